package optoutd

import "fmt"

// MaxBatchSets bounds the writes in one SetBatch: one Raft entry, which the
// cluster also bounds to 1 MiB encoded.
const MaxBatchSets = 1000

// SetBatchRequest is many writes applied in one Raft entry, in order, each
// under the rules of a single Set. The writes carry no idempotency key of
// their own: IdempotencyKey covers the whole batch.
type SetBatchRequest struct {
	Sets           []SetRequest
	IdempotencyKey string
	// ClientSchemaVersion and Caller are the batch's, as in SetRequest.
	ClientSchemaVersion uint32
	Caller              string
	// DryRun evaluates the batch against linearizable state as if it were
	// the next log entry and writes nothing.
	DryRun bool
}

// SetBatchItem is one write's outcome: Record when it was written, or Err
// (a *Error with the code a single Set would have failed with).
type SetBatchItem struct {
	Record Record
	Err    *Error
	// PreviousState and PreviousVersion are the record's before the write
	// (StateUnspecified and 0 for a new record); only for a written record,
	// and absent from a replayed result.
	PreviousState   State
	PreviousVersion uint64
}

// SetBatchResult is the outcome of a batch.
type SetBatchResult struct {
	// Version is the batch's log index: the version of every record it wrote.
	Version uint64
	// Items has one entry per request write, in request order.
	Items []SetBatchItem
	// Replayed is true when the idempotency key matched an earlier batch.
	Replayed       bool
	CatalogVersion uint64
	// DryRun: nothing was written; Version is the applied index the batch
	// was evaluated at.
	DryRun bool
}

// ValidateSetBatch checks a batch's shape: 1..MaxBatchSets writes, each
// valid as a Set, none with its own idempotency key, and at most one per
// key (a record changes at most once per version). Errors name the write
// by its position, as sets[i].
func ValidateSetBatch(b SetBatchRequest) error {
	if n := len(b.Sets); n == 0 || n > MaxBatchSets {
		return Errorf(Invalid, "sets: %d entries, must be 1..%d", n, MaxBatchSets)
	}
	if err := ValidateIdempotencyKey(b.IdempotencyKey); err != nil {
		return err
	}
	seen := make(map[Key]int, len(b.Sets))
	for i, s := range b.Sets {
		at := fmt.Sprintf("sets[%d].", i)
		if s.IdempotencyKey != "" {
			return Errorf(Invalid, "%sidempotency_key: must be empty in a batch; the batch's idempotency_key covers every write", at)
		}
		if err := ValidateSet(s); err != nil {
			return Errorf(Invalid, "%s%s", at, ErrorMessage(err))
		}
		if j, dup := seen[s.Key]; dup {
			return Errorf(Invalid, "%ssubject_id and purpose: the same record as sets[%d]; a batch writes each record at most once", at, j)
		}
		seen[s.Key] = i
	}
	return nil
}
