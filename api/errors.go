package api

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/wire"
)

// codes is the one table from domain codes to wire codes.
var codes = map[optoutd.Code]connect.Code{
	optoutd.Invalid:            connect.CodeInvalidArgument,
	optoutd.NotFound:           connect.CodeNotFound,
	optoutd.VersionMismatch:    connect.CodeFailedPrecondition,
	optoutd.FailedPrecondition: connect.CodeFailedPrecondition,
	optoutd.OutOfRange:         connect.CodeOutOfRange,
	optoutd.Unavailable:        connect.CodeUnavailable,
	optoutd.OutcomeUnknown:     connect.CodeUnknown,
	optoutd.Halted:             connect.CodeUnavailable,
	optoutd.Internal:           connect.CodeInternal,
}

// outcomes says, for a failed write, whether it may have been applied.
var outcomes = map[optoutd.Code]optoutv1.Outcome{
	optoutd.Invalid:            optoutv1.Outcome_OUTCOME_NOT_APPLIED,
	optoutd.NotFound:           optoutv1.Outcome_OUTCOME_NOT_APPLIED,
	optoutd.VersionMismatch:    optoutv1.Outcome_OUTCOME_NOT_APPLIED,
	optoutd.FailedPrecondition: optoutv1.Outcome_OUTCOME_NOT_APPLIED,
	optoutd.OutOfRange:         optoutv1.Outcome_OUTCOME_NOT_APPLIED,
	optoutd.Unavailable:        optoutv1.Outcome_OUTCOME_NOT_APPLIED,
	optoutd.OutcomeUnknown:     optoutv1.Outcome_OUTCOME_UNKNOWN,
	optoutd.Halted:             optoutv1.Outcome_OUTCOME_UNKNOWN,
	optoutd.Internal:           optoutv1.Outcome_OUTCOME_UNKNOWN,
}

// readError converts an error from a read RPC.
func readError(err error) error { return toConnect(err, false, false) }

// writeError converts an error from a write RPC; it always carries a
// WriteOutcome detail. ctx is the request's: an unknown outcome is
// reported as deadline_exceeded only when the client's deadline passed.
func writeError(ctx context.Context, err error) error {
	return toConnect(err, true, errors.Is(ctx.Err(), context.DeadlineExceeded))
}

func toConnect(err error, write, deadlinePassed bool) error {
	if err == nil {
		return nil
	}
	// The domain error is looked for first: it may wrap a *connect.Error
	// from a peer RPC (a forwarded write, a read index from the leader),
	// whose code and message say nothing about this request.
	var de *optoutd.Error
	if !errors.As(err, &de) {
		var ce *connect.Error
		if errors.As(err, &ce) {
			return ce
		}
		// A bare context error: the client's deadline or cancellation hit
		// before the store classified anything. For a write that is
		// unknown, because the store may have proposed it already.
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return withOutcome(connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded")), write, optoutv1.Outcome_OUTCOME_UNKNOWN)
		case errors.Is(err, context.Canceled):
			return withOutcome(connect.NewError(connect.CodeCanceled, errors.New("canceled")), write, optoutv1.Outcome_OUTCOME_UNKNOWN)
		}
		return withOutcome(connect.NewError(connect.CodeInternal, errors.New("internal error")), write, optoutv1.Outcome_OUTCOME_UNKNOWN)
	}
	code, ok := codes[de.Code]
	if !ok {
		code = connect.CodeInternal
	}
	msg := de.Message
	if de.Code == optoutd.OutcomeUnknown && deadlinePassed {
		code = connect.CodeDeadlineExceeded
	}
	ce := connect.NewError(code, errors.New(msg))
	if fromRemovedNode(err) {
		// Not this cluster's answer, only this node's: clients try another.
		ce.Meta().Set(wire.HeaderNodeRemoved, "true")
	}
	if de.Code == optoutd.VersionMismatch {
		if d, err := connect.NewErrorDetail(&optoutv1.VersionMismatch{CurrentVersion: de.CurrentVersion}); err == nil {
			ce.AddDetail(d)
		}
	}
	o, ok := outcomes[de.Code]
	if !ok {
		o = optoutv1.Outcome_OUTCOME_UNKNOWN
	}
	return withOutcome(ce, write, o)
}

// fromRemovedNode reports whether err comes from a node that was removed
// from the cluster. The store marks such errors with a NodeRemoved method
// (cluster.ErrNodeRemoved); see Store.
func fromRemovedNode(err error) bool {
	var r interface{ NodeRemoved() bool }
	return errors.As(err, &r) && r.NodeRemoved()
}

func withOutcome(ce *connect.Error, write bool, o optoutv1.Outcome) error {
	if !write || o == optoutv1.Outcome_OUTCOME_UNSPECIFIED {
		return ce
	}
	if d, err := connect.NewErrorDetail(&optoutv1.WriteOutcome{Outcome: o}); err == nil {
		ce.AddDetail(d)
	}
	return ce
}

// rejectedWrite marks a write refused before it reached the store.
func rejectedWrite(err error) error {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		ce = connect.NewError(connect.CodeInvalidArgument, err)
	}
	return withOutcome(ce, true, optoutv1.Outcome_OUTCOME_NOT_APPLIED)
}

// invalidf is a shorthand for a validation failure.
func invalidf(format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(format, args...))
}
