package fsm

import (
	"errors"
	"fmt"

	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// errPreviewed rolls back a preview's transaction.
var errPreviewed = errors.New("fsm: preview rolled back")

// Preview runs apply for payload as if it were the next log entry, stamped
// with stamp (Unix ns), and returns the result it would give, changing
// nothing: the write transaction is rolled back. It is the dry run of a
// write, with exactly apply's rules, and shares apply's single-writer lock,
// so it delays applying by its own duration (a batch of 1000 sets: a few
// milliseconds). Housekeeping that is due also runs, and is rolled back
// with the rest. The result names the index the entry would have: the
// applied index it was evaluated at, plus one.
func (f *FSM) Preview(payload proto.Message, stamp int64) (*fsmv1.Result, error) {
	if _, ok := payload.(*fsmv1.SetBatchCommand); !ok {
		// Only what a caller can ask to preview; others may have effects
		// outside the transaction later (none do today).
		return nil, fmt.Errorf("fsm: no preview for %T", payload)
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.Halted(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHalted, err)
	}
	if f.db == nil {
		return nil, errors.New("fsm: closed")
	}
	stamp = max(stamp, f.lastStamp.Load())
	var res *fsmv1.Result
	err := f.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		e := entry{
			index: readU64(meta.Get(keyAppliedIndex)) + 1,
			term:  readU64(meta.Get(keyAppliedTerm)),
			cmd:   command.Decoded{Type: fsmv1.CommandType_COMMAND_TYPE_SET_BATCH, Stamp: stamp, Payload: proto.Clone(payload)},
		}
		r, err := apply(tx, e)
		if err != nil {
			return err
		}
		res = r
		return errPreviewed
	})
	if !errors.Is(err, errPreviewed) {
		return nil, err
	}
	return res, nil
}
