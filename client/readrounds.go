package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// roundResult is what one read-index round learnt.
type roundResult struct {
	index   uint64 // every write acknowledged before the round began is at or below it
	catalog uint64 // the catalog version there
}

// readRounds shares read-index rounds among concurrent lookups: at most one
// round is in flight; a lookup that arrives while one is in flight waits
// for the next, which starts when the one in flight ends, and every lookup
// that arrived meanwhile shares it. A lookup never takes the answer of a
// round that began before it did: that round's index may have been
// captured before a write the lookup must see was acknowledged.
type readRounds struct {
	base    context.Context // ends with the cache
	timeout time.Duration
	fetch   func(context.Context) (roundResult, error)
	count   atomic.Uint64 // rounds started
	wg      sync.WaitGroup

	mu      sync.Mutex
	running bool
	closed  bool
	next    *round // the round new lookups join; nil until one does
}

type round struct {
	done   chan struct{} // closed when res and err are set
	res    roundResult
	err    error
	joined int // lookups waiting for it
}

func newReadRounds(base context.Context, timeout time.Duration, fetch func(context.Context) (roundResult, error)) *readRounds {
	return &readRounds{base: base, timeout: timeout, fetch: fetch}
}

// join returns the result of a round that began after join was called.
func (r *readRounds) join(ctx context.Context) (roundResult, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return roundResult{}, ErrCacheClosed
	}
	if r.next == nil {
		r.next = &round{done: make(chan struct{})}
	}
	rd := r.next
	rd.joined++
	if !r.running {
		r.startLocked()
	}
	r.mu.Unlock()
	select {
	case <-rd.done:
		return rd.res, rd.err
	case <-ctx.Done():
		return roundResult{}, ctx.Err()
	}
}

// startLocked starts r.next.
func (r *readRounds) startLocked() {
	rd := r.next
	r.next, r.running = nil, true
	r.count.Add(1)
	r.wg.Add(1)
	go r.run(rd)
}

func (r *readRounds) run(rd *round) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(r.base, r.timeout)
	rd.res, rd.err = r.fetch(ctx)
	cancel()
	close(rd.done)
	r.mu.Lock()
	r.running = false
	switch {
	case r.next != nil && r.closed:
		r.next.err = ErrCacheClosed
		close(r.next.done)
		r.next = nil
	case r.next != nil:
		r.startLocked()
	}
	r.mu.Unlock()
}

// waiting returns how many lookups wait for a round that has not started.
func (r *readRounds) waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		return 0
	}
	return r.next.joined
}

// close refuses new lookups and returns once no round runs; call it after
// base ended, so that the round in flight ends at once.
func (r *readRounds) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait()
}
