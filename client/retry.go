package client

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"time"
)

// Retrying.
//
// A call tries the endpoints in turn, starting with the last one that
// answered, and moves to the next while the failure says the request may
// be tried elsewhere (see retryRead and retryWrite). When every endpoint
// has failed that way it waits, with exponential backoff and full jitter,
// and goes round again, until the call's deadline or the client's retry
// budget (DefaultRetryBudget, WithRetryBudget) runs out, whichever comes
// first, so nothing retries forever and a long-lived context does not make
// a call hang. Nothing is retried that might apply twice: reads, writes that
// certainly did not apply, and writes that carry an idempotency key (Set
// always does; it makes one up when the caller gave none).

// Retry tuning.
const (
	// DefaultRetryBudget bounds how long one call keeps retrying.
	DefaultRetryBudget = 10 * time.Second
	backoffBase        = 10 * time.Millisecond
	backoffCap         = 500 * time.Millisecond
)

// WithRetryBudget sets how long one call keeps retrying
// (DefaultRetryBudget); 0 tries each endpoint once.
func WithRetryBudget(d time.Duration) Option { return func(o *options) { o.retryBudget = d } }

// backoff is the wait before pass n (n >= 1): uniform in [0, min(cap,
// base*2^n)], "full jitter", so clients that failed together do not come
// back together.
func backoff(n int, rnd func(int64) int64) time.Duration {
	d := backoffCap
	if n < 16 {
		d = min(backoffCap, backoffBase<<n)
	}
	return time.Duration(rnd(int64(d) + 1))
}

func jitter(n int64) int64 { return rand.Int64N(n) }

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// NewIdempotencyKey returns a fresh random idempotency key (128 bits, hex),
// the kind Set makes up for a request that has none. A service that
// retries a write itself, across restarts or from a queue, should derive
// the key from the event instead (its message id), so that every attempt
// carries the same one.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return "c-" + hex.EncodeToString(b[:])
}
