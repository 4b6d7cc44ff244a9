package fsm

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/command/commandtest"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
)

// The request limits (purpose name pattern, description length, principal
// name pattern, field sizes) belong to the API of one release; a later
// release may change them, and apply must not re-check them
// (commandtest.OtherLimits says why). other-limits.txt holds entries that a
// release with other limits could have written; every binary must apply
// them.

// TestEntriesValidUnderOtherLimitsApply replays those entries after an
// init: each one applies (no rule failure), exactly as it would on the
// release that wrote it.
func TestEntriesValidUnderOtherLimitsApply(t *testing.T) {
	b, err := os.ReadFile(commandtest.OtherLimitsFile())
	if err != nil {
		t.Fatal(err)
	}
	f := openTemp(t)
	initFSM(t, f)
	index := uint64(1)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, _ := strings.Cut(line, " ")
		data, err := hex.DecodeString(hx)
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		index++
		res := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data})
		if h := f.Halted(); h != nil {
			t.Fatalf("%s halted the state machine: %v", name, h)
		}
		r, ok := res.(*fsmv1.Result)
		if !ok || r.ErrorCode != fsmv1.ErrorCode_ERROR_CODE_UNSPECIFIED {
			t.Errorf("%s: refused at apply: %v", name, res)
		}
		n++
	}
	if n != len(commandtest.OtherLimits()) {
		t.Fatalf("%s holds %d entries, want %d", commandtest.OtherLimitsFile(), n, len(commandtest.OtherLimits()))
	}
}
