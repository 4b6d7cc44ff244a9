package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// Propose proposes one command (a payload built by package command) with
// the request's deadline, through the leader, and returns what applying it
// produced. Errors are *optoutd.Error: with Unavailable the command was
// certainly not applied, with OutcomeUnknown it may have been. A rule
// violation is not an error here but the Result's error code, which
// command.ResultError turns into the domain error.
func (n *Node) Propose(ctx context.Context, payload proto.Message) (*fsmv1.Result, error) {
	if n.removed.Load() {
		return nil, n.removedError()
	}
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	// A removed node can forward nothing: end the retries with the removal
	// instead of the deadline.
	ctx, cancelRemoved := n.untilRemoved(ctx)
	defer cancelRemoved()
	res, err := n.proposeCommand(ctx, payload)
	var na *notAppliedError
	if err != nil && errors.As(err, &na) && errors.Is(context.Cause(ctx), errRemoved) {
		return nil, n.removedError()
	}
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return res, nil
}

// proposeCommand encodes a command and proposes it (see propose).
func (n *Node) proposeCommand(ctx context.Context, payload proto.Message) (*fsmv1.Result, error) {
	// The time is stamped again by the leader; this one never reaches the log.
	data, err := command.Encode(payload, time.Time{})
	if err != nil {
		return nil, err
	}
	return n.propose(ctx, data)
}

// propose applies an encoded command through the leader, forwarding when
// this node is a follower. A failure that certainly happened before the
// command reached the log (no leader, leader changed, dial refused) is
// retried until ctx ends; any other failure is returned at once, classified
// as *notAppliedError or *unknownOutcomeError.
func (n *Node) propose(ctx context.Context, data []byte) (*fsmv1.Result, error) {
	backoff := 2 * time.Millisecond
	for {
		changed := n.changes()
		res, err := n.proposeOnce(ctx, data)
		var na *notAppliedError
		if err == nil || !errors.As(err, &na) {
			n.metrics.proposals.WithLabelValues(outcomeLabel(err)).Inc()
			return res, err
		}
		select {
		case <-changed:
		case <-time.After(backoff):
		case <-ctx.Done():
			n.metrics.proposals.WithLabelValues("not_applied").Inc()
			return nil, &notAppliedError{fmt.Errorf("%w (last attempt: %w)", ctx.Err(), na.err)}
		case <-n.stop:
			return nil, &notAppliedError{errShutdown}
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

func outcomeLabel(err error) string {
	var na *notAppliedError
	var uk *unknownOutcomeError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &na):
		return "not_applied"
	case errors.As(err, &uk):
		return "unknown"
	default:
		return "rejected"
	}
}

func (n *Node) proposeOnce(ctx context.Context, data []byte) (*fsmv1.Result, error) {
	if n.raft.State() == raft.Leader {
		if term := n.raft.CurrentTerm(); n.readyTerm.Load() != term {
			// Until this term's TermStart (and, on a new cluster, InitCluster)
			// is applied, a write could overtake them.
			return nil, &notAppliedError{errNotReady}
		}
		return n.applyLocal(ctx, data)
	}
	addr, id := n.raft.LeaderWithID()
	if addr == "" || string(id) == n.cfg.ID {
		return nil, &notAppliedError{errNoLeader}
	}
	n.metrics.forwarded.Inc()
	return n.peers.propose(ctx, string(addr), data)
}

// applyLocal checks that the command decodes (a command no node can apply
// must never enter the log), stamps the leader's time into it and applies
// it.
func (n *Node) applyLocal(ctx context.Context, data []byte) (*fsmv1.Result, error) {
	if _, err := command.Decode(data); err != nil {
		return nil, &notAppliedError{fmt.Errorf("cluster: refusing to propose: %w", err)}
	}
	timeout := n.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, &notAppliedError{context.DeadlineExceeded}
	}
	f, err := n.applyStamped(data, timeout)
	if err != nil {
		return nil, &notAppliedError{fmt.Errorf("cluster: refusing to propose: %w", err)}
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case err = <-done:
		default:
			return nil, &unknownOutcomeError{fmt.Errorf("cluster: waiting for commit: %w", ctx.Err())}
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// hashicorp/raft returns these before the entry is appended.
		return nil, &notAppliedError{err}
	default:
		// ErrLeadershipLost, ErrRaftShutdown, a log store failure: the entry
		// may be in the log and may yet commit.
		return nil, &unknownOutcomeError{err}
	}
	res, ok := f.Response().(*fsmv1.Result)
	if !ok {
		return nil, &unknownOutcomeError{fmt.Errorf("cluster: apply returned %T", f.Response())}
	}
	return res, nil
}
