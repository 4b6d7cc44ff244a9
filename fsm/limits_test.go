package fsm

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	fsmv1 "github.com/optoutd/optoutd/fsm/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// The request limits (purpose name pattern, description length, principal
// name pattern, field sizes) belong to the API of one release; a later
// release may change them. apply must not re-check them, or two replicas
// running different releases would decide the same entry differently and
// their catalogs (hence their Check answers) would diverge. These entries
// are what a release with other limits could have written; every binary
// must apply them. testdata/commands/other-limits.txt is never edited or
// regenerated; -write-fixtures writes it only when missing.
func otherLimitFixtures() map[string]proto.Message {
	return map[string]proto.Message{
		"a_define_long_description": &fsmv1.DefinePurposeCommand{Purpose: &fsmv1.PurposeDef{Name: "loyalty",
			Description: strings.Repeat("d", 4000), DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_DENY}},
		"b_define_uppercase_name": &fsmv1.DefinePurposeCommand{Purpose: &fsmv1.PurposeDef{Name: "Loyalty.Points",
			DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_ALLOW}},
		"c_define_long_name": &fsmv1.DefinePurposeCommand{Purpose: &fsmv1.PurposeDef{Name: strings.Repeat("p", 100),
			DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_ALLOW}},
		"d_set_uppercase_purpose": &fsmv1.SetCommand{SubjectId: strings.Repeat("s", 1000), Purpose: "Loyalty.Points",
			State: fsmv1.State_STATE_OPTED_OUT, Source: strings.Repeat("w", 2000), Reason: strings.Repeat("r", 2000)},
		"e_put_principal_odd_name": &fsmv1.PutPrincipalCommand{Name: "ops team+on call/" + strings.Repeat("x", 200),
			Kind: fsmv1.PrincipalKind_PRINCIPAL_KIND_CERTIFICATE, Role: fsmv1.Role_ROLE_READER},
	}
}

const otherLimitsFile = "testdata/commands/other-limits.txt"

func TestWriteOtherLimitFixtures(t *testing.T) {
	if !*writeFixtures {
		t.Skip("run with -write-fixtures to write " + otherLimitsFile + " if it is missing")
	}
	if _, err := os.Stat(otherLimitsFile); err == nil {
		return
	}
	var lines []string
	for name, m := range otherLimitFixtures() {
		b, err := Encode(fixtureType(m), m, time.Unix(1700000000, 0))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, name+" "+hex.EncodeToString(b))
	}
	sort.Strings(lines)
	out := "# Entries valid under other releases' request limits. Never edit or regenerate.\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(filepath.FromSlash(otherLimitsFile), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEntriesValidUnderOtherLimitsApply replays those entries after an
// init: each one applies (no rule failure), exactly as it would on the
// release that wrote it.
func TestEntriesValidUnderOtherLimitsApply(t *testing.T) {
	b, err := os.ReadFile(filepath.FromSlash(otherLimitsFile))
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
	if n != len(otherLimitFixtures()) {
		t.Fatalf("%s holds %d entries, want %d", otherLimitsFile, n, len(otherLimitFixtures()))
	}
}
