package cluster

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// TestCheckForwardedRefusesWhatTheAPIWouldRefuse: a forwarded command is
// held to this release's request limits on the leader; a good one passes.
func TestCheckForwardedRefusesWhatTheAPIWouldRefuse(t *testing.T) {
	enc := func(m proto.Message) []byte {
		b, err := command.Encode(m, time.Unix(1, 0))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name string
		data []byte
		want string // "" passes
	}{
		{"good set", enc(&fsmv1.SetCommand{SubjectId: "u1", Purpose: "analytics", State: fsmv1.State_STATE_OPTED_OUT}), ""},
		{"set without ttl", enc(&fsmv1.SetCommand{SubjectId: "u1", Purpose: "analytics", State: fsmv1.State_STATE_OPTED_OUT, IdempotencyKey: "k"}), "idempotency_ttl_nanos"},
		{"good receipt key", enc(command.RotateReceiptKey(bytes.Repeat([]byte{1}, 32), true, 3, "")), ""},
		{"short receipt key", enc(command.RotateReceiptKey([]byte("short"), true, 3, "")), "seed: 5 bytes"},
		{"good override", enc(&fsmv1.CreateOverrideCommand{Purpose: "analytics", Effect: 1, Reason: "r", Owner: "o"}), ""},
		{"override of a bad purpose", enc(&fsmv1.CreateOverrideCommand{Purpose: "Bad Purpose", Effect: 1, Reason: "r", Owner: "o"}), "purpose:"},
		{"override with a long owner", enc(&fsmv1.CreateOverrideCommand{Purpose: "analytics", Effect: 1, Reason: "r", Owner: strings.Repeat("o", 200)}), "owner"},
		{"end of override 0", enc(command.ExpireOverride(0)), "id: required"},
		{"good reports", enc(&fsmv1.RecordReportsCommand{Service: "mailer", Reports: 2, Violations: []*fsmv1.JudgedViolation{{Report: 1}}}), ""},
		{"reports of a bad service", enc(&fsmv1.RecordReportsCommand{Service: "Mail er", Reports: 1}), "service:"},
		{"more violations than reports", enc(&fsmv1.RecordReportsCommand{Service: "mailer", Reports: 1,
			Violations: []*fsmv1.JudgedViolation{{}, {Report: 1}}}), "1 reports with 2 violations"},
		{"term start", enc(command.TermStart("n1")), "cannot be forwarded"},
		{"register another node", enc(command.RegisterNode("n9", "127.0.0.1:1")), "registers another node"},
		{"garbage", []byte{0xff}, "does not decode"},
	}
	for _, c := range cases {
		err := checkForwarded(c.data, "n2")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error mentioning %q", c.name, err, c.want)
		}
	}
}
