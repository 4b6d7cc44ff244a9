package api_test

import (
	"testing"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

// TestCheckBatchUsesOneRead: a batch is answered from one store read (one
// read index, one view), whatever its size, and says which index.
func TestCheckBatchUsesOneRead(t *testing.T) {
	store := memStore()
	s := serve(t, store, api.Options{})
	c := optoutv1connect.NewOptOutServiceClient(http1Client(t), s.URL)
	if _, err := c.Set(ctx(t), connect.NewRequest(&optoutv1.SetRequest{SubjectId: "u1", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT})); err != nil {
		t.Fatal(err)
	}
	before := store.readCalls.Load()
	r, err := c.CheckBatch(ctx(t), connect.NewRequest(&optoutv1.CheckBatchRequest{Checks: []*optoutv1.CheckRequest{
		{SubjectId: "u1", Purpose: "email_marketing"}, {SubjectId: "u2", Purpose: "email_marketing"}, {SubjectId: "u1", Purpose: "sms_marketing"},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	if reads := store.readCalls.Load() - before; reads != 1 {
		t.Fatalf("a batch of 3 used %d store reads, want 1", reads)
	}
	got := r.Msg.GetResults()
	if len(got) != 3 || got[0].GetDecision() != optoutv1.Decision_DECISION_DENY || got[1].GetDecision() != optoutv1.Decision_DECISION_ALLOW ||
		got[2].GetDecision() != optoutv1.Decision_DECISION_DENY || r.Msg.GetReadIndex() != firstIndex+1 {
		t.Fatalf("batch answer %v", r.Msg)
	}
}
