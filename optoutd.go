package optoutd

import (
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"
)

// Limits on request fields. They are part of the contract: the API rejects
// anything larger with a message that names the field and the limit.
const (
	MaxSubjectIDBytes = 256
	MaxPurposeBytes   = 64
	MaxSourceBytes    = 256
	MaxReasonBytes    = 256
	MaxBatchChecks    = 1000
)

// State is a subject's choice for one purpose.
type State int

const (
	StateUnspecified State = iota // no record
	StateOptedOut
	StateOptedIn
)

func (s State) String() string {
	switch s {
	case StateOptedOut:
		return "opted_out"
	case StateOptedIn:
		return "opted_in"
	default:
		return "unspecified"
	}
}

// Decision is the answer to "may I process?".
type Decision int

const (
	DecisionUnspecified Decision = iota
	DecisionAllow
	DecisionDeny
)

func (d Decision) String() string {
	switch d {
	case DecisionAllow:
		return "allow"
	case DecisionDeny:
		return "deny"
	default:
		return "unspecified"
	}
}

// Key identifies one record.
type Key struct {
	SubjectID string
	Purpose   string
}

// Record is the current state of one key. Version is the Raft log index of
// the write that last changed it; 0 means "no record".
type Record struct {
	Key
	State     State
	Version   uint64
	UpdatedAt time.Time
	Source    string
	Reason    string
}

// SetRequest is a write of one key. ExpectedVersion, when not nil, makes it a
// compare-and-set; a pointer to 0 means "must not exist yet".
type SetRequest struct {
	Key
	State           State
	Source          string
	Reason          string
	ExpectedVersion *uint64
	// IdempotencyKey, if set, makes a retry with the same request return the
	// first result instead of writing again.
	IdempotencyKey string
	// ClientSchemaVersion is what the client declared (0: no header).
	ClientSchemaVersion uint32
	// Caller is the authenticated identity, when there is one.
	Caller string
}

// SetResult is the outcome of a write.
type SetResult struct {
	Record Record
	// Replayed is true when an idempotency key matched an earlier write:
	// Record is that write's result and nothing new was written.
	Replayed       bool
	CatalogVersion uint64
}

// CheckResult is the decision for one key and the fact that decided it.
// State and Version describe the deciding record (zero for a default).
type CheckResult struct {
	Decision  Decision
	State     State
	Version   uint64
	Basis     Basis
	DecidedBy string
}

var purposeRE = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)

// ValidateKey checks a key's fields and names the first bad one.
func ValidateKey(k Key) error {
	if err := ValidateSubjectID(k.SubjectID); err != nil {
		return err
	}
	return ValidatePurpose(k.Purpose)
}

// ValidateSubjectID checks that id is 1 to MaxSubjectIDBytes of valid UTF-8.
func ValidateSubjectID(id string) error {
	switch {
	case id == "":
		return Errorf(Invalid, "subject_id: must not be empty")
	case len(id) > MaxSubjectIDBytes:
		return Errorf(Invalid, "subject_id: %d bytes is over the limit of %d", len(id), MaxSubjectIDBytes)
	case !utf8.ValidString(id):
		return Errorf(Invalid, "subject_id: must be valid UTF-8")
	}
	return nil
}

// ValidatePurpose checks p against [a-z0-9_.-]{1,64}.
func ValidatePurpose(p string) error {
	if !purposeRE.MatchString(p) {
		return Errorf(Invalid, "purpose: %q must match [a-z0-9_.-]{1,%d}", truncate(p, 80), MaxPurposeBytes)
	}
	return nil
}

// ValidateSet checks every field of a write.
func ValidateSet(r SetRequest) error {
	if err := ValidateKey(r.Key); err != nil {
		return err
	}
	if r.State != StateOptedOut && r.State != StateOptedIn {
		return Errorf(Invalid, "state: must be STATE_OPTED_OUT or STATE_OPTED_IN")
	}
	if err := validateText("source", r.Source, MaxSourceBytes); err != nil {
		return err
	}
	if err := validateText("reason", r.Reason, MaxReasonBytes); err != nil {
		return err
	}
	return ValidateIdempotencyKey(r.IdempotencyKey)
}

// ValidateText checks a free-text field: at most limit bytes of UTF-8.
func ValidateText(field, s string, limit int) error { return validateText(field, s, limit) }

func validateText(field, s string, limit int) error {
	if len(s) > limit {
		return Errorf(Invalid, "%s: %d bytes is over the limit of %d", field, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return Errorf(Invalid, "%s: must be valid UTF-8", field)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:n], len(s))
}

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
	// VerifyAudit walks the hash chain.
	VerifyAudit() (AuditReport, error)
}

// ClusterStatus is one node's view of the cluster.
type ClusterStatus struct {
	NodeID       string
	LeaderID     string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	RaftState    string
	Nodes        []NodeStatus

	LastLogIndex      uint64
	FirstLogIndex     uint64
	LastSnapshotIndex uint64
}

// NodeStatus describes one member of the Raft configuration.
type NodeStatus struct {
	ID          string
	RaftAddress string
	APIAddress  string
	Voter       bool
	Leader      bool
}

// StateDigest summarises one replica's state for convergence checks.
type StateDigest struct {
	NodeID       string
	AppliedIndex uint64
	SHA256       [32]byte
	Records      uint64
}
