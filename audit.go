package optoutd

import (
	"fmt"
	"strconv"
	"time"
)

// AuditKind is the kind of change an audit entry records.
type AuditKind int

const (
	AuditUnspecified AuditKind = iota
	AuditSet
	AuditErase
	AuditOverrideCreated
	AuditOverrideRevoked
	AuditOverrideExpired
)

func (k AuditKind) String() string {
	names := [...]string{"unspecified", "set", "erase", "override_created", "override_revoked", "override_expired"}
	if k < 0 || int(k) >= len(names) {
		return "auditkind(" + strconv.Itoa(int(k)) + ")"
	}
	return names[k]
}

// AuditEntry is one change in the tamper-evident history.
type AuditEntry struct {
	Version    uint64
	Time       time.Time
	Kind       AuditKind
	SubjectID  string // empty once erased
	Erased     bool
	Purpose    string
	OldState   State
	NewState   State
	OldVersion uint64
	Source     string // empty once erased
	Reason     string // empty once erased
	Caller     string
	PrevHash   []byte
	Hash       []byte
	// OverrideID: override entries only.
	OverrideID uint64
	// Seq is the entry's place among the changes at its version: 0 except
	// for the second and later records of one SetBatch.
	Seq uint32
}

// AuditReport is the result of walking the hash chain.
type AuditReport struct {
	Entries uint64
	// FirstVersion and LastVersion bound the entries checked.
	FirstVersion, LastVersion uint64
	// BrokenAt is the version of the first entry that fails, 0 if none.
	BrokenAt uint64
	Problem  string
}

// OK reports whether the chain verified.
func (r AuditReport) OK() bool { return r.BrokenAt == 0 && r.Problem == "" }

func (r AuditReport) String() string {
	if r.OK() {
		return fmt.Sprintf("audit chain OK: %d entries, versions %d..%d", r.Entries, r.FirstVersion, r.LastVersion)
	}
	return fmt.Sprintf("audit chain BROKEN at version %d: %s (%d entries checked before it)", r.BrokenAt, r.Problem, r.Entries)
}

// StateAtResult answers "what was the state of (subject, purpose) as of a
// version".
type StateAtResult struct {
	AsOf   uint64
	Check  CheckResult
	Record Record // the purpose record as of AsOf (zero if none)
}
