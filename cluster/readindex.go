package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/fsm"
)

type readResult struct {
	index uint64
	err   error
}

// Read runs fn against state that reflects every write acknowledged before
// Read was called, and returns the read index it used. See DESIGN.md.
func (n *Node) Read(ctx context.Context, fn func(optoutd.View) error) (uint64, error) {
	if n.removed.Load() {
		return 0, n.removedError()
	}
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	if n.cfg.UnsafeLocalReads {
		var idx uint64
		err := n.fsm.View(func(r *fsm.Reader) error { idx = r.AppliedIndex(); return fn(r) })
		return idx, err
	}
	idx, err := n.linearizable(ctx)
	if err != nil {
		return 0, err
	}
	err = n.fsm.View(func(r *fsm.Reader) error { return fn(r) })
	return idx, err
}

// linearizable gets a read index and waits until this node has applied
// it: state read after it returns reflects every write acknowledged
// before the call began. Errors are domain errors.
func (n *Node) linearizable(ctx context.Context) (uint64, error) {
	// A node removed while a read waits will never apply more: end the
	// wait with the removal instead of the deadline.
	ctx, cancelRemoved := n.untilRemoved(ctx)
	defer cancelRemoved()
	idx, err := n.readIndex(ctx)
	if err == nil {
		err = n.fsm.WaitApplied(ctx, idx)
	}
	switch {
	case err == nil:
		return idx, nil
	case errors.Is(context.Cause(ctx), errRemoved):
		return 0, n.removedError()
	case errors.Is(err, fsm.ErrHalted):
		return 0, optoutd.WrapError(optoutd.Halted, err, "this node halted applying the log")
	default:
		return 0, readError(ctx, err)
	}
}

// untilRemoved returns a context that also ends, with cause errRemoved,
// when this node learns it was removed. It registers a callback on the
// node's removal context rather than starting a goroutine per request.
func (n *Node) untilRemoved(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(n.removedCtx, func() { cancel(errRemoved) })
	return ctx, func() { stop(); cancel(nil) }
}

// readIndex returns an index such that state applied up to it reflects
// every write acknowledged before the call. It joins the batching loop and
// retries through elections until ctx ends.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	backoff := 2 * time.Millisecond
	for {
		changed := n.changes()
		w := make(chan readResult, 1)
		select {
		case n.readQ <- w:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-n.stop:
			return 0, errShutdown
		}
		var res readResult
		select {
		case res = <-w:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-n.stop:
			return 0, errShutdown
		}
		if res.err == nil || errors.Is(res.err, errShutdown) {
			return res.index, res.err
		}
		select {
		case <-changed:
		case <-time.After(backoff):
		case <-ctx.Done():
			return 0, fmt.Errorf("%w (last attempt: %w)", ctx.Err(), res.err)
		case <-n.stop:
			return 0, errShutdown
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// runReadLoop serves queued reads in rounds: every read that arrives while a
// round is running joins the next one, so concurrent reads share one quorum
// heartbeat (on the leader) or one RPC to the leader (on a follower).
func (n *Node) runReadLoop() {
	defer n.wg.Done()
	for {
		var batch []chan readResult
		select {
		case w := <-n.readQ:
			batch = append(batch, w)
		case <-n.stop:
			return
		}
	drain:
		for {
			select {
			case w := <-n.readQ:
				batch = append(batch, w)
			default:
				break drain
			}
		}
		idx, err := n.obtainReadIndex()
		n.metrics.readRounds.Inc()
		n.metrics.readBatch.Observe(float64(len(batch)))
		for _, w := range batch {
			w <- readResult{index: idx, err: err}
		}
	}
}

func (n *Node) obtainReadIndex() (uint64, error) {
	select {
	case <-n.stop:
		return 0, errShutdown
	default:
	}
	// One round must never hold up the reads queued behind it for long: a
	// leader that vanished (its packets dropped, not refused) would
	// otherwise stall every read on this node for the whole request
	// timeout. So a round is bounded by the election timeout (the soonest a
	// replacement can exist) and ends early when the leader changes; the
	// waiting reads then retry with the new leader.
	changed := n.changes()
	ctx, cancel := context.WithTimeout(context.Background(), n.roundTimeout())
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-changed:
			cancel()
		case <-ctx.Done():
		}
	}()
	if n.raft.State() == raft.Leader {
		return n.leaderReadIndex(ctx)
	}
	addr, id := n.raft.LeaderWithID()
	if addr == "" || string(id) == n.cfg.ID {
		return 0, errNoLeader
	}
	return n.peers.readIndex(ctx, string(addr))
}

// roundTimeout bounds one read-index round: twice the election timeout,
// at least a second.
func (n *Node) roundTimeout() time.Duration {
	return max(2*n.cfg.ElectionTimeout, time.Second)
}

// leaderRaft is what a leader's read-index round needs of hashicorp/raft.
// *raft.Raft has it; the round's unit tests fake it.
type leaderRaft interface {
	CurrentTerm() uint64
	CommitIndex() uint64
	VerifyLeader() raft.Future
	GetConfiguration() raft.ConfigurationFuture
}

// leaderReadIndex is the read-index recipe of the Raft thesis, section 6.4:
// the commit index is captured before leadership is confirmed, and only in
// a term in which this leader has already committed an entry.
func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	return readIndexAsLeader(ctx, n.raft, n.readyTerm.Load(), n.acks, raft.ServerID(n.cfg.ID))
}

func readIndexAsLeader(ctx context.Context, r leaderRaft, readyTerm uint64, acks *ackTracker, self raft.ServerID) (uint64, error) {
	term := r.CurrentTerm()
	if readyTerm != term {
		return 0, errNotReady
	}
	start := time.Now()
	idx := r.CommitIndex()
	if err := confirmLeadership(ctx, r, acks, self, term, start); err != nil {
		return 0, err
	}
	return idx, nil
}

// confirmLeadership returns once a majority of voters has recognised this
// node as the leader of term at some moment after start: each counted
// follower answered, in term, a request sent at or after start (see
// acks.go). VerifyLeader makes the heartbeats go out at once and fails
// fast if a newer leader answers; on its own it may count an answer to a
// request sent before start.
func confirmLeadership(ctx context.Context, r leaderRaft, acks *ackTracker, self raft.ServerID, term uint64, start time.Time) error {
	if err := waitFuture(ctx, r.VerifyLeader()); err != nil {
		return fmt.Errorf("cluster: verify leader: %w", err)
	}
	if r.CurrentTerm() != term {
		return errTermChanged
	}
	cf := r.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("cluster: verify leader: %w", err)
	}
	var voters []raft.ServerID
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters = append(voters, s.ID)
		}
	}
	for {
		ok, changed := acks.freshQuorum(self, voters, term, start)
		if ok {
			return nil
		}
		// VerifyLeader counted an answer to an older request; the
		// heartbeats it triggered are on their way.
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("cluster: verify leader: no majority answered since the read began: %w", ctx.Err())
		}
	}
}

// ReadLocal runs fn against this node's current state without a read
// index: the answer may be stale, and fn can see how stale through
// View.AppliedIndex.
func (n *Node) ReadLocal(fn func(optoutd.View) error) error {
	if n.removed.Load() {
		return n.removedError()
	}
	err := n.fsm.View(func(r *fsm.Reader) error { return fn(r) })
	if errors.Is(err, fsm.ErrHalted) {
		return optoutd.WrapError(optoutd.Halted, err, "this node halted applying the log")
	}
	return err
}

// WaitApplied blocks until this node's state machine has applied index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	err := n.fsm.WaitApplied(ctx, index)
	if errors.Is(err, fsm.ErrHalted) {
		return optoutd.WrapError(optoutd.Halted, err, "this node halted applying the log")
	}
	return err
}
