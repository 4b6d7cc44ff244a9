package fsm

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// logApplier applies commands at consecutive indexes with a stamp in
// seconds the caller chooses.
type logApplier struct {
	t   *testing.T
	h   *harness
	idx uint64
}

func (a *logApplier) at(sec int64, m proto.Message) *fsmv1.Result {
	a.t.Helper()
	typ, _ := command.TypeOf(m)
	a.idx++
	r, err := a.h.applyLog(&raft.Log{Index: a.idx, Term: 1, Type: raft.LogCommand, Data: mustEncode(a.t, typ, m, sec*1e9)})
	if err != nil {
		a.t.Fatalf("halted: %v", err)
	}
	return r.(*fsmv1.Result)
}

func (a *logApplier) check(k optoutd.Key, nowSec int64) optoutd.CheckResult {
	a.t.Helper()
	var res optoutd.CheckResult
	if err := a.h.f.View(func(v *Reader) error {
		r, err := v.Check(k)
		if err != nil {
			return err
		}
		ovs, err := v.Overrides(k)
		res = optoutd.WithOverrides(r, k, ovs, time.Unix(nowSec, 0))
		return err
	}); err != nil {
		a.t.Fatal(err)
	}
	return res
}

// TestOverridesLiveAndEnd: an ALLOW override bypasses an opt-out until it
// is revoked; a DENY override beats it; an expiry entry before the due
// time changes nothing, after it ends the override and counts it as
// forgotten; a node's clock past the expiry already stops honouring it;
// the cap and the missing fields are rule failures; erasure ends and
// blanks the subject's overrides.
func TestOverridesLiveAndEnd(t *testing.T) {
	a := &logApplier{t: t, h: newHarness(t)}
	a.at(1, &fsmv1.InitClusterCommand{ErasureKey: make([]byte, 32), Purposes: command.PurposeDefs(optoutd.StarterCatalog)})
	k := optoutd.Key{SubjectID: "u1", Purpose: "analytics"}
	a.at(2, command.Set(optoutd.SetRequest{Key: k, State: optoutd.StateOptedOut}, 0))
	ov := func(subject, purpose string, e optoutd.OverrideEffect, expiresSec int64) *fsmv1.CreateOverrideCommand {
		return command.CreateOverride(optoutd.Override{SubjectID: subject, Purpose: purpose, Effect: e, Reason: "INC-1", Owner: "oncall",
			ExpiresAt: time.Unix(expiresSec, 0)}, 0, "admin")
	}
	for name, c := range map[string]*fsmv1.CreateOverrideCommand{
		"over the cap":      ov("u1", "analytics", optoutd.OverrideAllow, 10+25*3600),
		"in the past":       ov("u1", "analytics", optoutd.OverrideAllow, 5),
		"no effect":         ov("u1", "analytics", optoutd.OverrideEffectUnspecified, 100),
		"undefined purpose": ov("u1", "nope", optoutd.OverrideAllow, 100),
	} {
		if r := a.at(10, c); r.ErrorCode == 0 {
			t.Errorf("%s: accepted: %v", name, r)
		}
	}
	allow := a.at(10, ov("u1", "analytics", optoutd.OverrideAllow, 100))
	if allow.ErrorCode != 0 || allow.OverrideId != a.idx {
		t.Fatalf("create: %v", allow)
	}
	if r := a.check(k, 50); r.Decision != optoutd.DecisionAllow || r.OverrideID != allow.OverrideId || r.Basis != optoutd.BasisOverride {
		t.Fatalf("under the ALLOW override: %+v", r)
	}
	if r := a.check(optoutd.Key{SubjectID: "u2", Purpose: "analytics"}, 50); r.OverrideID != 0 {
		t.Fatalf("another subject is under u1's override: %+v", r)
	}
	if r := a.check(k, 100); r.Decision != optoutd.DecisionDeny || r.OverrideID != 0 {
		t.Fatalf("at its expiry by the clock, before the expiry entry: %+v", r)
	}
	kill := a.at(11, ov("", "all", optoutd.OverrideDeny, 200))
	if r := a.check(optoutd.Key{SubjectID: "u9", Purpose: "analytics"}, 50); r.Decision != optoutd.DecisionDeny || r.OverrideID != kill.OverrideId {
		t.Fatalf("under the kill switch: %+v", r)
	}
	if r := a.check(k, 50); r.OverrideID != kill.OverrideId {
		t.Fatalf("DENY does not beat ALLOW: %+v", r)
	}
	if r := a.at(20, command.ExpireOverride(allow.OverrideId)); r.ErrorCode != fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION {
		t.Fatalf("an early expiry entry: %v", r)
	}
	if r := a.at(100, command.ExpireOverride(allow.OverrideId)); r.ErrorCode != 0 || r.Override.State != fsmv1.OverrideState_OVERRIDE_STATE_EXPIRED {
		t.Fatalf("a due expiry entry: %v", r)
	}
	if r := a.at(101, command.RevokeOverride(kill.OverrideId, "", 0, "admin")); r.ErrorCode != fsmv1.ErrorCode_ERROR_CODE_INVALID {
		t.Fatalf("a revoke without a reason: %v", r)
	}
	if r := a.at(101, command.RevokeOverride(kill.OverrideId, "over", 0, "admin")); r.Override.GetState() != fsmv1.OverrideState_OVERRIDE_STATE_REVOKED {
		t.Fatalf("revoke: %v", r)
	}
	if r := a.at(102, command.RevokeOverride(kill.OverrideId, "again", 0, "admin")); r.ErrorCode != fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION {
		t.Fatalf("a second revoke: %v", r)
	}
	erasable := a.at(103, ov("u1", "analytics", optoutd.OverrideAllow, 1000))
	a.at(104, command.EraseSubject("u1", "gdpr", 0, "admin"))
	err := a.h.f.View(func(v *Reader) error {
		st, _ := v.Settings()
		if st.OverridesExpired != 1 {
			t.Errorf("forgotten bypasses: %d, want 1", st.OverridesExpired)
		}
		if act, _ := v.ListOverrides(false, "", 100); len(act) != 0 {
			t.Errorf("active after the ends: %+v", act)
		}
		all, _ := v.ListOverrides(true, "", 100)
		if len(all) != 3 || all[0].ID != erasable.OverrideId || all[0].SubjectID != "" || all[0].State != optoutd.OverrideRevoked {
			t.Errorf("after erasure: %+v", all)
		}
		ch, _ := v.Changes(0, 100)
		for _, e := range ch {
			if e.OverrideID == erasable.OverrideId && (e.SubjectID != "" || !e.Erased) {
				t.Errorf("an audit entry of the erased subject's override keeps its id: %+v", e)
			}
		}
		rep, err := v.VerifyAudit()
		if err == nil && !rep.OK() {
			t.Errorf("audit chain after override entries: %+v", rep)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
