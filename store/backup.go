package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/fsm"
)

// Backup streams a consistent copy of the whole state to w in the framed
// snapshot format (package snapfile) and returns the applied index of the
// copy.
//
// It first does a linearizable read, so the copy holds every write
// acknowledged before the call, on any node; then it streams one bbolt read
// transaction, so writes go on while it runs and the copy is a single
// point in the log (at or after the read index). The file it produces is
// what 'optoutd restore' seeds a new cluster from, and what FSM.Restore
// reads.
func (s *Store) Backup(ctx context.Context, w io.Writer) (uint64, error) {
	readIdx, err := s.node.Read(ctx, func(optoutd.View) error { return nil })
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("cluster: backup: %w", err)
	}
	idx, err := s.node.FSM().WriteBackup(w, time.Now())
	switch {
	case errors.Is(err, fsm.ErrHalted):
		return 0, optoutd.WrapError(optoutd.Halted, err, "this node halted applying the log")
	case err != nil:
		return 0, fmt.Errorf("cluster: backup: %w", err)
	case idx < readIdx:
		// The state went backwards between the read and the copy: only a
		// concurrent restore from an older snapshot does that. The copy
		// would miss acknowledged writes, so it is refused.
		return 0, optoutd.Errorf(optoutd.Unavailable, "backup: state at index %d is behind the read index %d (a snapshot restore ran); try again", idx, readIdx)
	}
	return idx, nil
}
