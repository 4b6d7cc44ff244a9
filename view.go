package optoutd

import "time"

// View is one consistent version of the state, as of some applied index.
type View interface {
	// AppliedIndex is the log index this view reflects.
	AppliedIndex() uint64
	// Get returns the record for k, and false when there is none (then the
	// returned Record has only its Key set).
	Get(k Key) (Record, bool, error)
	// Check decides k; NotFound if the purpose is not defined.
	Check(k Key) (CheckResult, error)
	// Settings returns the replicated settings.
	Settings() (Settings, error)
	// Purpose returns one catalog entry; NotFound if undefined.
	Purpose(name string) (Purpose, error)
	// Purposes returns the catalog in name order.
	Purposes() ([]Purpose, error)
	// History returns a subject's audit entries, newest first, with version
	// below before (0: no bound), at most limit, only purpose if not "".
	History(subject, purpose string, before uint64, limit int) ([]AuditEntry, error)
	// StateAt answers for (subject, purpose) as of version asOf.
	StateAt(k Key, asOf uint64) (StateAtResult, error)
	// Changes returns audit entries with version > after, oldest first, at
	// most limit.
	Changes(after uint64, limit int) ([]AuditEntry, error)
	// Records returns records in the store's key order after key after
	// (a zero Key: from the first), only purpose's unless purpose is "", at
	// most limit, scanning at most RecordScanBudget(limit) keys. next is
	// the last key scanned when more may follow, and the zero Key at the
	// end.
	Records(after Key, purpose string, limit int) (recs []Record, next Key, err error)
	// VerifyAudit walks the hash chain.
	VerifyAudit() (AuditReport, error)
	// ReceiptKeys returns every receipt signing key, newest first.
	ReceiptKeys() ([]ReceiptKey, error)
	// ReceiptKey returns one key, and false if the cluster never had it.
	ReceiptKey(id uint32) (ReceiptKey, bool, error)
	// CurrentReceiptKey returns the key receipts are signed with now, and
	// false if the cluster has none yet.
	CurrentReceiptKey() (ReceiptKey, bool, error)
	// ReceiptSubjectHash is the keyed hash of subject that receipts carry.
	ReceiptSubjectHash(subject string) []byte
	// Overrides returns the active overrides whose scope covers k; apply
	// them with WithOverrides.
	Overrides(k Key) ([]Override, error)
	// ListOverrides returns overrides newest first (only active ones unless
	// ended; only purpose's unless purpose is ""), at most limit.
	ListOverrides(ended bool, purpose string, limit int) ([]Override, error)
	// Override returns one override; NotFound if there is none.
	Override(id uint64) (Override, error)
	// ListViolations returns violations newest first, with id below
	// before (0: no bound), only service's / purpose's / the subject
	// hash's unless empty, at most limit.
	ListViolations(service, purpose string, subjectHash []byte, before uint64, limit int) ([]Violation, error)
	// ServiceScores sums each service's reports in the hours from from to
	// to (only service's unless ""), in service order.
	ServiceScores(service string, from, to time.Time) ([]ServiceScore, error)
}

// RecordScanBudget bounds the keys one Records page scans, so a purpose
// filter that matches few records never turns one page into a scan of the
// whole store.
func RecordScanBudget(limit int) int { return 20 * max(limit, 1) }
