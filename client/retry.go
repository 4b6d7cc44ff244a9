package client

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
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

// doIdempotent is do for a write that carries an idempotency key, retried
// with retryIdempotent. An attempt whose outcome was unknown may still be
// applied, so the call as a whole is "certainly not applied" only when every
// attempt was: a retry refused before it reached the log (by a removed node,
// say) says nothing about the first attempt. The error is then the first
// uncertain attempt's, with the retry's refusal in its message.
func doIdempotent[T any](ctx context.Context, c *Client, fn func(endpoint) (T, error)) (T, error) {
	var uncertain error
	v, err := doFrom(ctx, c, c.writeStart(), func(err error) bool {
		if uncertain == nil && Outcome(err) != optoutv1.Outcome_OUTCOME_NOT_APPLIED {
			uncertain = err
		}
		return retryIdempotent(err)
	}, fn)
	if err != nil && uncertain != nil && Outcome(err) == optoutv1.Outcome_OUTCOME_NOT_APPLIED {
		err = outcomeUnknownAfter(uncertain, err)
	}
	return v, err
}

// outcomeUnknownAfter reports an earlier attempt's unknown outcome, keeping
// its code, after a later attempt was refused without being applied (a
// refusal that, for all it says, may have met the earlier attempt's effect:
// a version mismatch, say). It unwraps to both.
func outcomeUnknownAfter(uncertain, last error) error {
	msg := uncertain.Error()
	if ce := new(connect.Error); errors.As(uncertain, &ce) {
		msg = ce.Message()
	}
	ce := connect.NewError(connect.CodeOf(uncertain), &retriedError{
		msg:  fmt.Sprintf("%s; the write may have been applied (a retry was then refused: %v)", msg, last),
		errs: []error{uncertain, last},
	})
	if d, err := connect.NewErrorDetail(&optoutv1.WriteOutcome{Outcome: optoutv1.Outcome_OUTCOME_UNKNOWN}); err == nil {
		ce.AddDetail(d)
	}
	return ce
}

type retriedError struct {
	msg  string
	errs []error
}

func (e *retriedError) Error() string   { return e.msg }
func (e *retriedError) Unwrap() []error { return e.errs }
