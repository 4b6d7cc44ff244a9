package optoutd

import "time"

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
