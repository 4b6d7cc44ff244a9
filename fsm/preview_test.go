package fsm

import (
	"testing"

	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// TestPreviewIsApplyWithoutTheWrite: a preview of a batch gives the result
// applying it then gives (the same writes and refusals, previous states
// included), and until then the state is byte for byte unchanged.
func TestPreviewIsApplyWithoutTheWrite(t *testing.T) {
	b := newBatchFSM(t)
	for _, s := range []string{"u1", "u4"} {
		if r := b.apply(out(s, "analytics")); r.ErrorCode != 0 {
			t.Fatal(r.ErrorMessage)
		}
	}
	batch := &fsmv1.SetBatchCommand{Caller: "importer", Sets: []*fsmv1.SetCommand{
		out("u2", "email_marketing"),
		in("u1", "analytics"),  // deny wins
		out("u4", "analytics"), // already opted out: written again
		out("u2", "no_such_purpose"),
	}}
	digest := func() [32]byte {
		var d [32]byte
		b.view(func(r *Reader) error {
			var err error
			d, _, err = r.Digest()
			return err
		})
		return d
	}
	before, applied := digest(), b.f.AppliedIndex()
	preview, err := b.f.Preview(batch, 1000e9)
	if err != nil {
		t.Fatal(err)
	}
	if digest() != before || b.f.AppliedIndex() != applied {
		t.Fatal("the preview changed the state")
	}
	if preview.Index != applied+1 {
		t.Errorf("preview names index %d, want %d", preview.Index, applied+1)
	}
	got := b.apply(batch)
	if got.ErrorCode != 0 || len(got.Items) != len(batch.Sets) {
		t.Fatalf("batch refused: %v %q", got.ErrorCode, got.ErrorMessage)
	}
	// The real entry's records carry its index; the preview's the next one,
	// which is the same index here.
	if !proto.Equal(preview, got) {
		t.Errorf("preview differs from apply:\npreview %v\napply   %v", preview, got)
	}
	if p := got.Items[2]; p.PreviousState != fsmv1.State_STATE_OPTED_OUT || p.PreviousVersion != 3 {
		t.Errorf("rewrite of an opt-out: previous %v at %d, want opted out at 3", p.PreviousState, p.PreviousVersion)
	}
	if p := got.Items[0]; p.PreviousState != fsmv1.State_STATE_UNSPECIFIED || p.PreviousVersion != 0 {
		t.Errorf("new record: previous %v at %d, want none", p.PreviousState, p.PreviousVersion)
	}
	if _, err := b.f.Preview(out("u9", "analytics"), 1000e9); err == nil {
		t.Error("a preview of a single Set was accepted; only batches are previewed")
	}
}
