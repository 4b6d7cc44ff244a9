package judge_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"github.com/optoutd/optoutd/fsm"
	"github.com/optoutd/optoutd/judge"
	"google.golang.org/protobuf/proto"
)

// state is a real state machine (bbolt in a temp dir) fed entries with
// stamps in seconds.
type state struct {
	t   *testing.T
	f   *fsm.FSM
	idx uint64
}

func newState(t *testing.T) *state {
	f, err := fsm.Open(fsm.Config{Path: filepath.Join(t.TempDir(), "fsm.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	s := &state{t: t, f: f}
	s.at(1, command.InitCluster(make([]byte, 32), nil, optoutd.StarterCatalog))
	return s
}

func (s *state) at(sec int64, m proto.Message) *fsmv1.Result {
	s.t.Helper()
	data, err := command.Encode(m, time.Unix(sec, 0))
	if err != nil {
		s.t.Fatal(err)
	}
	s.idx++
	r, ok := s.f.Apply(&raft.Log{Index: s.idx, Term: 1, Type: raft.LogCommand, Data: data}).(*fsmv1.Result)
	if !ok || r.ErrorCode != 0 {
		s.t.Fatalf("apply %T: %v", m, r)
	}
	return r
}

func (s *state) judge(reports ...judge.Report) []judge.Verdict {
	s.t.Helper()
	var out []judge.Verdict
	err := s.f.View(func(v *fsm.Reader) (err error) {
		_, out, err = judge.Batch(v, "svc", reports, v.AppliedIndex(), time.Unix(10_000, 0))
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// TestJudgeByTimeAndVersionWithOverrides: a report is judged at its own
// point, by time or by version, and an ALLOW override covers it only
// while it was in force there.
func TestJudgeByTimeAndVersionWithOverrides(t *testing.T) {
	s := newState(t)
	k := optoutd.Key{SubjectID: "u1", Purpose: "analytics"}
	out := s.at(100, command.Set(optoutd.SetRequest{Key: k, State: optoutd.StateOptedOut}, 0))
	ov := s.at(120, command.CreateOverride(optoutd.Override{SubjectID: "u1", Purpose: "analytics", Effect: optoutd.OverrideAllow,
		Reason: "INC", Owner: "oncall", ExpiresAt: time.Unix(200, 0)}, 0, ""))
	s.at(130, command.TermStart("n1"))
	revoked := s.at(140, command.RevokeOverride(ov.OverrideId, "done", 0, ""))
	at := func(sec int64) judge.Report {
		return judge.Report{Subject: "u1", Purpose: "analytics", At: time.Unix(sec, 0)}
	}
	ver := func(v uint64) judge.Report { return judge.Report{Subject: "u1", Purpose: "analytics", Version: v} }
	cases := []struct {
		name string
		r    judge.Report
		want optoutd.ViolationKind
	}{
		{"before the opt-out, by time", at(50), optoutd.ViolationNoReceipt},
		{"after the opt-out, by time", at(110), optoutd.ViolationProcessedWhileOptedOut},
		{"under the override, by time", at(125), optoutd.ViolationNoReceipt},
		{"after the revoke, by time", at(150), optoutd.ViolationProcessedWhileOptedOut},
		{"before the opt-out, by version", ver(out.Index - 1), optoutd.ViolationNoReceipt},
		{"at the opt-out, by version", ver(out.Index), optoutd.ViolationProcessedWhileOptedOut},
		{"under the override, by version", ver(ov.OverrideId + 1), optoutd.ViolationNoReceipt},
		{"at the revoke, by version", ver(revoked.Index), optoutd.ViolationProcessedWhileOptedOut},
		{"another subject", judge.Report{Subject: "u2", Purpose: "analytics", At: time.Unix(150, 0)}, optoutd.ViolationNoReceipt},
		{"a receipt that is not one", judge.Report{Subject: "u2", Purpose: "analytics", At: time.Unix(150, 0), Receipt: "x"}, optoutd.ViolationInvalidReceipt},
	}
	for _, c := range cases {
		if got := s.judge(c.r); got[0].Kind != c.want {
			t.Errorf("%s: %v (%s), want %v", c.name, got[0].Kind, got[0].Evidence, c.want)
		}
	}
}

// TestBadReportsAreRefused: the batch is refused, naming the report and
// field, for what cannot be judged.
func TestBadReportsAreRefused(t *testing.T) {
	s := newState(t)
	bad := []judge.Report{
		{Subject: "u1", Purpose: "analytics"},
		{Subject: "u1", Purpose: "analytics", Version: 1, At: time.Unix(5, 0)},
		{Subject: "u1", Purpose: "analytics", Version: 999},
		{Subject: "u1", Purpose: "analytics", At: time.Unix(20_000, 0)},
		{Subject: "u1", Purpose: "undefined", Version: 1},
	}
	for i, r := range bad {
		err := s.f.View(func(v *fsm.Reader) error {
			_, _, err := judge.Batch(v, "svc", []judge.Report{{Subject: "ok", Purpose: "analytics", Version: 1}, r}, v.AppliedIndex(), time.Unix(10_000, 0))
			return err
		})
		if optoutd.ErrorCode(err) != optoutd.Invalid || !contains(err.Error(), "reports[1].") {
			t.Errorf("bad report %d: %v", i, err)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestOldOverridesStillCount: a report about processing under an override
// is judged with it even after many newer overrides (of another purpose)
// were made; an earlier version read only the newest 1,000.
func TestOldOverridesStillCount(t *testing.T) {
	s := newState(t)
	k := optoutd.Key{SubjectID: "u1", Purpose: "analytics"}
	s.at(100, command.Set(optoutd.SetRequest{Key: k, State: optoutd.StateOptedOut}, 0))
	old := s.at(110, command.CreateOverride(optoutd.Override{SubjectID: "u1", Purpose: "analytics", Effect: optoutd.OverrideAllow,
		Reason: "INC", Owner: "oncall", ExpiresAt: time.Unix(3000, 0)}, 0, ""))
	var logs []*raft.Log
	for i := 0; i < 1001; i++ {
		data, err := command.Encode(command.CreateOverride(optoutd.Override{Purpose: "profiling", Effect: optoutd.OverrideDeny,
			Reason: "drill", Owner: "oncall", ExpiresAt: time.Unix(3000, 0)}, 0, ""), time.Unix(200, 0))
		if err != nil {
			t.Fatal(err)
		}
		s.idx++
		logs = append(logs, &raft.Log{Index: s.idx, Term: 1, Type: raft.LogCommand, Data: data})
	}
	s.f.ApplyBatch(logs)
	if got := s.judge(judge.Report{Subject: "u1", Purpose: "analytics", Version: old.OverrideId + 1}); got[0].Kind != optoutd.ViolationNoReceipt {
		t.Fatalf("processing under override %d, after 1001 newer overrides: %v (%s)", old.OverrideId, got[0].Kind, got[0].Evidence)
	}
}
