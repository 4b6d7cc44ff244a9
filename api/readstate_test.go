package api_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

// TestAnswersNameTheStateTheyWereReadFrom: a linearizable read waits for
// read index R, then reads the state, which may have applied more (A > R).
// The index an answer carries is A, the state it was read from, not R: a
// consumer reports a fence's index as processed_version, and a change
// applied between R and A (a re-opt-in) is in the answer, so naming R
// would make the judge see another state than the fence did.
func TestAnswersNameTheStateTheyWereReadFrom(t *testing.T) {
	const roundIndex, applied = 40, 45
	st := &fakeStore{}
	st.ReadFn = func(_ context.Context, fn func(optoutd.View) error) (uint64, error) {
		return roundIndex, fn(memView{applied: applied})
	}
	s := serve(t, st, api.Options{})
	c := optoutv1connect.NewOptOutServiceClient(http1Client(t), s.URL)
	r, err := c.Check(ctx(t), connect.NewRequest(&optoutv1.CheckRequest{SubjectId: "u1", Purpose: "email_marketing"}))
	if err != nil {
		t.Fatal(err)
	}
	if r.Msg.ReadIndex != applied {
		t.Fatalf("Check read_index = %d, want the state's %d (the round's was %d)", r.Msg.ReadIndex, applied, roundIndex)
	}
}

// TestPageLimitsAreChecked: the enforcement lists refuse a page over the
// limit, naming the field, before reading anything.
func TestPageLimitsAreChecked(t *testing.T) {
	st := &fakeStore{}
	s := serve(t, st, api.Options{})
	e := optoutv1connect.NewEnforcementServiceClient(http1Client(t), s.URL)
	_, err := e.ListOverrides(ctx(t), connect.NewRequest(&optoutv1.ListOverridesRequest{Limit: 1001}))
	_ = checkMapped(t, err, mapping{code: connect.CodeInvalidArgument, message: "limit: 1001 is over the limit of 1000"})
	_, err = e.ListViolations(ctx(t), connect.NewRequest(&optoutv1.ListViolationsRequest{Limit: 5000}))
	_ = checkMapped(t, err, mapping{code: connect.CodeInvalidArgument, message: "limit: 5000 is over the limit of 1000"})
	if n := st.calls(); n != 0 {
		t.Fatalf("refused lists made %d store calls", n)
	}
}
