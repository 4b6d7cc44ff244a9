package fsm

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
)

// TestLastStampIsTheLatestApplied: the latest stamp applied is kept in the
// file, survives a reopen and travels with a snapshot; the leader stamps no
// new entry earlier (cluster's stamper).
func TestLastStampIsTheLatestApplied(t *testing.T) {
	h := newHarness(t)
	initFSM(t, h.f)
	h.f.ApplyBatch([]*raft.Log{setLog(t, 2, "a", "analytics", true, 300), setLog(t, 3, "b", "analytics", true, 200)})
	if got := h.f.LastStamp(); got != 300 {
		t.Fatalf("last stamp %d, want 300 (the latest, not the last)", got)
	}
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}
	h.open()
	if got := h.f.LastStamp(); got != 300 {
		t.Fatalf("after reopen: %d, want 300", got)
	}
	var snap bytes.Buffer
	if _, err := h.f.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	dst := openTemp(t)
	if err := dst.Restore(io.NopCloser(&snap)); err != nil {
		t.Fatal(err)
	}
	if got := dst.LastStamp(); got != 300 {
		t.Fatalf("after restore: %d, want 300", got)
	}
}

// TestForwardClockJumpExpiresKeysEarlyByTheJump measures the exposure that
// cluster/stamp.go documents: with a leader clock D ahead, an idempotency
// key expires D early, so a retry later than (window - D) after the first
// attempt applies a second time. With a correct clock the same retry is
// answered from the key. The state machine only sees stamps, so this is
// exact, and every replica expires the key at the same entry.
func TestForwardClockJumpExpiresKeysEarlyByTheJump(t *testing.T) {
	const window = int64(24 * time.Hour)
	jump := int64(2 * time.Hour)
	t0 := int64(1_000_000) * int64(time.Second)
	set := func(f *FSM, index uint64, stamp int64) *fsmv1.Result {
		t.Helper()
		b, err := command.Encode(&fsmv1.SetCommand{SubjectId: "u1", Purpose: "analytics",
			State: fsmv1.State_STATE_OPTED_OUT, IdempotencyKey: "evt-1", IdempotencyTtlNanos: window}, time.Unix(0, stamp))
		if err != nil {
			t.Fatal(err)
		}
		r, ok := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: b}).(*fsmv1.Result)
		if !ok || r.ErrorCode != fsmv1.ErrorCode_ERROR_CODE_UNSPECIFIED {
			t.Fatalf("apply %d: %v", index, r)
		}
		return r
	}
	for _, tc := range []struct {
		name     string
		ahead    int64 // how far the retry's leader clock is ahead
		retry    int64 // real time from the first attempt to the retry
		replayed bool
	}{
		{"correct clock, retry just inside the window", 0, window - jump - 1, true},
		{"correct clock, retry just past window-D", 0, window - jump + 1, true},
		{"clock D ahead, retry just inside window-D", jump, window - jump - 1, true},
		{"clock D ahead, retry just past window-D", jump, window - jump + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := openTemp(t)
			initFSM(t, f)
			set(f, 2, t0)
			again := set(f, 3, t0+tc.retry+tc.ahead)
			if again.Replayed != tc.replayed {
				t.Fatalf("retry %v after the first attempt, leader clock %v ahead: replayed=%v, want %v",
					time.Duration(tc.retry), time.Duration(tc.ahead), again.Replayed, tc.replayed)
			}
		})
	}
}
