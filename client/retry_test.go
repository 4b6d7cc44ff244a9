package client

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// TestBackoffIsJitteredAndCapped: the wait before pass n is uniform in
// [0, min(500ms, 10ms*2^n)].
func TestBackoffIsJitteredAndCapped(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 20 * time.Millisecond, 3: 80 * time.Millisecond, 6: 500 * time.Millisecond, 40: 500 * time.Millisecond} {
		if got := backoff(n, func(m int64) int64 { return m - 1 }); got != want {
			t.Errorf("largest wait before pass %d: %v, want %v", n, got, want)
		}
		if got := backoff(n, func(int64) int64 { return 0 }); got != 0 {
			t.Errorf("smallest wait before pass %d: %v, want 0", n, got)
		}
	}
	for range 100 {
		if d := backoff(4, jitter); d < 0 || d > 160*time.Millisecond {
			t.Fatalf("backoff(4) = %v, outside [0, 160ms]", d)
		}
	}
}

func TestNewIdempotencyKeysDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		k := NewIdempotencyKey()
		if len(k) != 34 || seen[k] {
			t.Fatalf("key %q (len %d), seen before: %v", k, len(k), seen[k])
		}
		seen[k] = true
	}
}

// TestOutcomeTakesTheOutermostVerdict: a summary's own WriteOutcome wins
// over what it wraps, and a call that failed on several endpoints is
// NOT_APPLIED only when each endpoint's failure was.
func TestOutcomeTakesTheOutermostVerdict(t *testing.T) {
	withOutcome := func(code connect.Code, o optoutv1.Outcome) error {
		ce := connect.NewError(code, errors.New("answer"))
		d, err := connect.NewErrorDetail(&optoutv1.WriteOutcome{Outcome: o})
		if err != nil {
			t.Fatal(err)
		}
		ce.AddDetail(d)
		return ce
	}
	refused := connect.NewError(connect.CodeUnavailable, &dialError{err: errors.New("connection refused")})
	eof := connect.NewError(connect.CodeUnavailable, errors.New("unexpected EOF"))
	notApplied := withOutcome(connect.CodeUnavailable, optoutv1.Outcome_OUTCOME_NOT_APPLIED)
	all := func(errs ...error) error {
		a := &AllFailedError{}
		for _, e := range errs {
			a.Errs = append(a.Errs, EndpointError{Endpoint: "x", Err: e})
		}
		return a
	}
	for _, tc := range []struct {
		name string
		err  error
		want optoutv1.Outcome
	}{
		{"refused dial", refused, optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		{"transport failure", eof, optoutv1.Outcome_OUTCOME_UNKNOWN},
		{"the node's verdict", notApplied, optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		{"unknown, then refused dials", outcomeUnknownAfter(eof, all(refused)), optoutv1.Outcome_OUTCOME_UNKNOWN},
		{"every endpoint refused", all(refused, notApplied), optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		{"one endpoint unknown", all(refused, eof), optoutv1.Outcome_OUTCOME_UNKNOWN},
		{"wrapped", fmt.Errorf("set: %w", refused), optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		{"empty summary", &AllFailedError{}, optoutv1.Outcome_OUTCOME_UNKNOWN},
	} {
		if got := Outcome(tc.err); got != tc.want {
			t.Errorf("%s: Outcome = %v, want %v (%v)", tc.name, got, tc.want, tc.err)
		}
	}
}
