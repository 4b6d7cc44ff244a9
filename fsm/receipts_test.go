package fsm

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
)

// TestReceiptKeysRotateAndStay: the first key is added only if none
// exists (two racing "first key" entries add one), a rotation adds a new
// current key, every key stays readable, and a bad seed is a rule failure
// that changes nothing (the state machine keeps running).
func TestReceiptKeysRotateAndStay(t *testing.T) {
	h := newHarness(t)
	seed := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	idx := uint64(0)
	apply := func(c *fsmv1.RotateReceiptKeyCommand) *fsmv1.Result {
		t.Helper()
		idx++
		r, err := h.applyLog(&raft.Log{Index: idx, Term: 1, Type: raft.LogCommand,
			Data: mustEncode(t, fsmv1.CommandType_COMMAND_TYPE_ROTATE_RECEIPT_KEY, c, int64(idx)*1e9)})
		if err != nil {
			t.Fatalf("halted: %v", err)
		}
		return r.(*fsmv1.Result)
	}
	if r := apply(command.RotateReceiptKey([]byte("short"), true, 0, "")); r.ErrorCode != fsmv1.ErrorCode_ERROR_CODE_INVALID {
		t.Fatalf("a 5-byte seed: %v", r)
	}
	if r := apply(command.RotateReceiptKey(seed(1), true, 0, "")); r.ReceiptKeyId != 1 || r.ErrorCode != 0 {
		t.Fatalf("first key: %v", r)
	}
	if r := apply(command.RotateReceiptKey(seed(2), true, 0, "")); r.ReceiptKeyId != 1 {
		t.Fatalf("a second first-key entry: %v", r)
	}
	if r := apply(command.RotateReceiptKey(seed(3), false, 0, "")); r.ReceiptKeyId != 2 {
		t.Fatalf("rotation: %v", r)
	}
	err := h.f.View(func(v *Reader) error {
		keys, err := v.ReceiptKeys()
		if err != nil {
			return err
		}
		if len(keys) != 2 || keys[0].ID != 2 || !keys[0].Current || !bytes.Equal(keys[0].Seed, seed(3)) ||
			keys[1].ID != 1 || keys[1].Current || !bytes.Equal(keys[1].Seed, seed(1)) || keys[1].Version != 2 {
			t.Fatalf("keys: %+v", keys)
		}
		if cur, ok, err := v.CurrentReceiptKey(); err != nil || !ok || cur.ID != 2 || !bytes.Equal(cur.Seed, seed(3)) {
			t.Fatalf("current key: %+v %v %v", cur, ok, err)
		}
		if _, ok, _ := v.ReceiptKey(7); ok {
			t.Fatal("key 7 exists")
		}
		a, b := v.ReceiptSubjectHash("u1"), v.ReceiptSubjectHash("u2")
		if len(a) != optoutd.ReceiptSubjectHashBytes || bytes.Equal(a, b) || bytes.Contains(a, []byte("u1")) {
			t.Fatalf("subject hashes %x %x", a, b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
