package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/optoutd/optoutd"
)

// Internal conditions. They become optoutd.Errors at the package boundary.
var (
	errNoLeader     = errors.New("cluster: no leader known")
	errNotReady     = errors.New("cluster: leader has not yet committed an entry of its term")
	errTermChanged  = errors.New("cluster: term changed while confirming leadership")
	errShutdown     = errors.New("cluster: node is shutting down")
	errServerTimout = errors.New("cluster: request timeout")
)

// ErrNodeRemoved is wrapped by every refusal from a node that was removed
// from the cluster: another node may well serve the request. The API, which
// does not import this package, recognises it by its NodeRemoved method.
var ErrNodeRemoved error = nodeRemovedError{}

type nodeRemovedError struct{}

func (nodeRemovedError) Error() string { return "cluster: this node was removed from the cluster" }

// NodeRemoved says that the node answering was removed from the cluster.
func (nodeRemovedError) NodeRemoved() bool { return true }

// notAppliedError wraps a failure that certainly happened before the write
// reached the log: retrying is safe.
type notAppliedError struct{ err error }

func (e *notAppliedError) Error() string { return "not applied: " + e.err.Error() }
func (e *notAppliedError) Unwrap() error { return e.err }

// unknownOutcomeError wraps a failure after which the write may or may not
// be in the log.
type unknownOutcomeError struct{ err error }

func (e *unknownOutcomeError) Error() string { return "outcome unknown: " + e.err.Error() }
func (e *unknownOutcomeError) Unwrap() error { return e.err }

// withDefaultTimeout gives ctx the node's RequestTimeout when the client set
// no deadline. A timeout of ours is reported as unavailable, the client's
// own deadline as deadline exceeded.
func (n *Node) withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, n.cfg.RequestTimeout, errServerTimout)
}

// readError turns a failed read into a domain error.
func readError(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(context.Cause(ctx), errServerTimout) {
		return fmt.Errorf("cluster: read: %w", ctx.Err())
	}
	if errors.Is(err, errShutdown) {
		return optoutd.WrapError(optoutd.Unavailable, err, "node is shutting down")
	}
	return optoutd.WrapError(optoutd.Unavailable, err, "cannot confirm a linearizable read: no leader reachable with a quorum")
}

// writeError turns a failed write into a domain error that says whether it
// may have been applied.
func writeError(ctx context.Context, err error) error {
	var na *notAppliedError
	if errors.As(err, &na) {
		return optoutd.WrapError(optoutd.Unavailable, err, "write not applied (%v); retrying is safe", na.err)
	}
	var de *optoutd.Error
	if errors.As(err, &de) {
		return err
	}
	if ctx.Err() != nil && !errors.Is(context.Cause(ctx), errServerTimout) {
		return optoutd.WrapError(optoutd.OutcomeUnknown, ctx.Err(), "deadline passed while the write was in flight; it may have been applied")
	}
	return optoutd.WrapError(optoutd.OutcomeUnknown, err, "the write may have been applied (%v)", errors.Unwrap(err))
}
