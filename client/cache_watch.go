package client

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// run keeps the watch stream open until ctx ends: each stream resumes from
// the last version delivered, on the next endpoint, after a backoff. A
// stream refused with OUT_OF_RANGE (retention removed changes the cache
// has not seen) is restarted from a fresh read index, and everything is
// flushed.
func (cc *Cache) run(ctx context.Context, cursor uint64) {
	defer close(cc.done)
	backoff := firstWatchBackoff
	start := int(cc.watch.next.Load())
	for attempt := 0; ; attempt++ {
		e := cc.watch.eps[(start+attempt)%len(cc.watch.eps)]
		delivered, err := cc.stream(ctx, e, &cursor)
		if ctx.Err() != nil {
			return
		}
		cc.disconnected(err)
		if connect.CodeOf(err) == connect.CodeOutOfRange {
			if fresh, ok := cc.restart(ctx); ok {
				cursor = fresh
			}
		}
		if delivered {
			backoff = firstWatchBackoff
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, maxWatchBackoff)
	}
}

// stream runs one watch stream from *cursor, applying what it brings. A
// stream that brings no message for StallTimeout is cut: a node that
// stopped (SIGSTOP, a frozen VM, a black-holed link) leaves the
// connection open, and a cache bound to it would refuse forever.
func (cc *Cache) stream(ctx context.Context, e endpoint, cursor *uint64) (bool, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	stalled := make(chan struct{})
	go func() {
		t := time.NewTicker(cc.opts.StallTimeout / 4)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case now := <-t.C:
				if now.Sub(time.Unix(0, last.Load())) >= cc.opts.StallTimeout {
					close(stalled)
					cancel()
					return
				}
			}
		}
	}()
	delivered, err := cc.watch.watchOnce(sctx, e, cursor, cc.opts.Purposes, cc.apply, func() {
		last.Store(time.Now().UnixNano())
	})
	select {
	case <-stalled:
		err = fmt.Errorf("client: cache: the watch stream from %s brought nothing for %v", e.url, cc.opts.StallTimeout)
	default:
	}
	return delivered, err
}

// apply takes one event of the stream: a change drops what it may have
// made stale; progress says how far the cache is current.
func (cc *Cache) apply(ev WatchEvent) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if ch := ev.Change; ch != nil {
		// An erasure, or any entry whose subject was erased since (its id
		// is gone from the history), cannot be matched to the subject's
		// entries: drop them all.
		if ch.SubjectId == "" || ch.Erased || ch.Kind == optoutv1.AuditKind_AUDIT_KIND_ERASE {
			cc.flushLocked()
		} else {
			cc.invalidateLocked(ch.SubjectId)
		}
		return nil
	}
	cc.progress = max(cc.progress, ev.Progress)
	if !cc.connected {
		cc.connected, cc.lastErr, cc.fatal = true, nil, false
	}
	cc.wakeLocked()
	return nil
}

// disconnected records that the stream ended, and why.
func (cc *Cache) disconnected(err error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.connected {
		cc.connected, cc.downSince = false, time.Now()
	}
	cc.lastErr = err
	switch connect.CodeOf(err) {
	case connect.CodeInvalidArgument, connect.CodeNotFound, connect.CodePermissionDenied,
		connect.CodeUnauthenticated, connect.CodeFailedPrecondition:
		cc.fatal = true // NewCache gives up; later, the loop keeps trying
	}
	cc.wakeLocked()
}

// restart gets a fresh read index to watch from and flushes everything.
// The index comes first: a miss that starts after the flush then reads at
// or after it, and the new stream sees every change after it.
func (cc *Cache) restart(ctx context.Context) (uint64, bool) {
	rctx, cancel := context.WithTimeout(ctx, cc.opts.RoundTimeout)
	defer cancel()
	r, err := cc.c.ReadIndex(rctx)
	if err != nil {
		return 0, false // the next stream is refused again, and retries
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.flushLocked()
	cc.seeCatalogLocked(r.CatalogVersion)
	return r.ReadIndex, true
}

// waitConnected waits for the first stream (NewCache).
func (cc *Cache) waitConnected(ctx context.Context) error {
	for {
		cc.mu.Lock()
		connected, fatal, lastErr, wake := cc.connected, cc.fatal, cc.lastErr, cc.wake
		cc.mu.Unlock()
		switch {
		case connected:
			return nil
		case fatal:
			return fmt.Errorf("watch: %w", lastErr)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("watch stream not up: %w (last: %w)", ctx.Err(), lastErr)
			}
			return fmt.Errorf("watch stream not up: %w", ctx.Err())
		}
	}
}

// caughtUp waits until the stream has delivered every change up to index,
// or refuses: ErrCacheDisconnected once the stream has been down for
// MaxLag, ErrCacheLagging once MaxLag has passed without it getting there.
func (cc *Cache) caughtUp(ctx context.Context, index uint64) error {
	deadline := time.Now().Add(cc.opts.MaxLag)
	for {
		cc.mu.Lock()
		if err := cc.usableLocked(); err != nil {
			cc.mu.Unlock()
			return err
		}
		connected, progress, lastErr, wake := cc.connected, cc.progress, cc.lastErr, cc.wake
		until := deadline
		if down := cc.downSince.Add(cc.opts.MaxLag); !connected && down.Before(until) {
			until = down
		}
		cc.mu.Unlock()
		if connected && progress >= index {
			return nil
		}
		wait := time.Until(until)
		if wait <= 0 {
			if !connected {
				return disconnectedError(lastErr)
			}
			return fmt.Errorf("%w: delivered through %d, read index %d, after %v", ErrCacheLagging, progress, index, cc.opts.MaxLag)
		}
		t := time.NewTimer(wait)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// usableLocked refuses at once when the cache is closed, or its stream
// has been down for MaxLag already (no read-index round is worth making).
func (cc *Cache) usableLocked() error {
	switch {
	case cc.closed:
		return ErrCacheClosed
	case !cc.connected && time.Since(cc.downSince) >= cc.opts.MaxLag:
		return disconnectedError(cc.lastErr)
	}
	return nil
}

func disconnectedError(last error) error {
	if last == nil {
		return ErrCacheDisconnected
	}
	return fmt.Errorf("%w: %w", ErrCacheDisconnected, last)
}

// wakeLocked wakes everyone waiting for progress or a change of the
// stream's state.
func (cc *Cache) wakeLocked() {
	close(cc.wake)
	cc.wake = make(chan struct{})
}
