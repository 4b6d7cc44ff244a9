package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// WatchEvent is one message of a watch: a change, or progress (every
// change up to Progress has been delivered). Each stream's first progress
// is delivered even when it repeats the last version delivered (a
// reconnect that found nothing new); after that, only progress that moves.
type WatchEvent struct {
	Change   *optoutv1.AuditEntry
	Progress uint64
}

// Watch streams changes with version > from to fn, in version order,
// exactly once, until ctx ends or fn returns an error. When a stream breaks
// (a node dies, a leader changes) it reconnects, to the next endpoint, from
// the last version delivered, so nothing is repeated or skipped. Errors that
// a reconnect cannot fix (OUT_OF_RANGE, INVALID_ARGUMENT,
// FAILED_PRECONDITION, NOT_FOUND for an undefined purpose, and the
// authentication errors) are returned.
func (c *Client) Watch(ctx context.Context, from uint64, purposes []string, fn func(WatchEvent) error) error {
	cursor := from
	backoff := 20 * time.Millisecond
	start := int(c.next.Load())
	for attempt := 0; ; attempt++ {
		e := c.eps[(start+attempt)%len(c.eps)]
		delivered, err := c.watchOnce(ctx, e, &cursor, purposes, fn, nil)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var stop *stopError
		if errors.As(err, &stop) {
			return stop.err
		}
		switch connect.CodeOf(err) {
		case connect.CodeOutOfRange, connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodePermissionDenied, connect.CodeUnauthenticated,
			connect.CodeNotFound: // an undefined purpose: another node says the same
			return err
		}
		if delivered {
			backoff = 20 * time.Millisecond
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, time.Second)
	}
}

type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }

// watchOnce runs one stream from *cursor, delivering to fn and moving
// *cursor past what it delivered. received, if set, is called for every
// message the stream brings, delivered or not (the cache's stall watch).
func (c *Client) watchOnce(ctx context.Context, e endpoint, cursor *uint64, purposes []string, fn func(WatchEvent) error, received func()) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := e.optout.Watch(ctx, connect.NewRequest(&optoutv1.WatchRequest{FromVersion: *cursor, Purposes: purposes}))
	if err != nil {
		return false, err
	}
	defer stream.Close()
	delivered := false
	progressed := false // this stream delivered a progress
	lastProgress := *cursor
	for stream.Receive() {
		if received != nil {
			received()
		}
		msg := stream.Msg()
		var ev WatchEvent
		switch m := msg.Event.(type) {
		case *optoutv1.WatchResponse_Change:
			if m.Change.Version <= *cursor {
				return delivered, fmt.Errorf("client: %s sent version %d at or below %d", e.url, m.Change.Version, *cursor)
			}
			ev.Change = m.Change
			*cursor = m.Change.Version
		case *optoutv1.WatchResponse_Changes:
			// One SetBatch's changes at one version, delivered one by one;
			// the cursor passes the version only after the last.
			g := m.Changes.GetEntries()
			if len(g) == 0 || g[0].Version <= *cursor {
				return delivered, fmt.Errorf("client: %s sent an empty group or one at or below version %d", e.url, *cursor)
			}
			for _, ch := range g {
				if ch.Version != g[0].Version {
					return delivered, fmt.Errorf("client: %s sent a group mixing versions %d and %d", e.url, g[0].Version, ch.Version)
				}
			}
			for _, ch := range g {
				delivered = true
				if err := fn(WatchEvent{Change: ch}); err != nil {
					return delivered, &stopError{err}
				}
			}
			*cursor = g[0].Version
			continue
		case *optoutv1.WatchResponse_Progress:
			// Deliver progress when it moves, even if it only confirms the
			// last change: "nothing newer than N" is what a cache needs.
			// The first of each stream is delivered even when it equals
			// the cursor: it says the stream is up and has caught up with
			// the node (a cache that skipped it never saw itself connected
			// while nothing was written).
			p := m.Progress.AppliedIndex
			if p < *cursor || progressed && p <= lastProgress {
				continue
			}
			ev.Progress = p
			lastProgress, progressed = p, true
			*cursor = p
		default:
			continue
		}
		delivered = true
		if err := fn(ev); err != nil {
			return delivered, &stopError{err}
		}
	}
	if err := stream.Err(); err != nil {
		return delivered, err
	}
	return delivered, errors.New("client: watch stream ended")
}
