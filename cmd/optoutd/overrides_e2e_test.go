package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/receipt"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func metricsOf(t *testing.T, p *proc) []byte {
	t.Helper()
	resp, err := http.Get("http://" + p.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return b
}

// TestOverridesEndToEnd: against three real processes, an ALLOW override
// bypasses an opt-out and says so (in the answer, the receipt and the
// metrics); bad overrides are refused naming the field and change
// nothing; a DENY kill switch stops a whole purpose until revoked; the
// ALLOW override runs to its expiry, the leader logs the expiry, every
// node counts it as a forgotten bypass, and a node that was down across
// the expiry does not honour it when it comes back.
func TestOverridesEndToEnd(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := pc.all()
	const subject, purpose = "ovr-u1", "analytics"
	mustSet(t, c, subject, purpose, optoutv1.State_STATE_OPTED_OUT, nil)
	req := func(mod func(*optoutv1.CreateOverrideRequest)) *optoutv1.CreateOverrideRequest {
		r := &optoutv1.CreateOverrideRequest{SubjectId: subject, Purpose: purpose, Effect: optoutv1.OverrideEffect_OVERRIDE_EFFECT_ALLOW,
			Reason: "INC-4411 replay", Owner: "oncall-payments", ExpiresAt: timestamppb.New(time.Now().Add(4 * time.Second))}
		mod(r)
		return r
	}

	t.Run("bad overrides are refused and change nothing", func(t *testing.T) {
		cases := []struct {
			name string
			mod  func(*optoutv1.CreateOverrideRequest)
			code connect.Code
			msg  string
		}{
			{"no expiry", func(r *optoutv1.CreateOverrideRequest) { r.ExpiresAt = nil }, connect.CodeInvalidArgument, "expires_at: required"},
			{"over the cap", func(r *optoutv1.CreateOverrideRequest) { r.ExpiresAt = timestamppb.New(time.Now().Add(25 * time.Hour)) },
				connect.CodeInvalidArgument, "over the cluster's max_override of 24h0m0s"},
			{"in the past", func(r *optoutv1.CreateOverrideRequest) { r.ExpiresAt = timestamppb.New(time.Now().Add(-time.Minute)) },
				connect.CodeInvalidArgument, "is not in the future"},
			{"no reason", func(r *optoutv1.CreateOverrideRequest) { r.Reason = "" }, connect.CodeInvalidArgument, "reason: required"},
			{"no owner", func(r *optoutv1.CreateOverrideRequest) { r.Owner = "" }, connect.CodeInvalidArgument, "owner: required"},
			{"no effect", func(r *optoutv1.CreateOverrideRequest) { r.Effect = 0 }, connect.CodeInvalidArgument, "effect:"},
			{"bad purpose", func(r *optoutv1.CreateOverrideRequest) { r.Purpose = "Not A Purpose" }, connect.CodeInvalidArgument, "purpose:"},
			{"undefined purpose", func(r *optoutv1.CreateOverrideRequest) { r.Purpose = "no_such_purpose" }, connect.CodeNotFound, "not defined"},
		}
		for _, tc := range cases {
			_, err := c.CreateOverride(ctx, req(tc.mod))
			if connect.CodeOf(err) != tc.code || err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.msg)) {
				t.Errorf("%s: got %v, want %v mentioning %q", tc.name, err, tc.code, tc.msg)
			}
		}
		_, err := c.SetMaxOverrideDuration(ctx, time.Second)
		wantCode(t, err, connect.CodeInvalidArgument, "max_override: 1s must be between 1m0s and 720h0m0s")
		if _, err := c.SetMaxOverrideDuration(ctx, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateOverride(ctx, req(func(r *optoutv1.CreateOverrideRequest) { r.ExpiresAt = timestamppb.New(time.Now().Add(time.Hour)) }))
		wantCode(t, err, connect.CodeInvalidArgument, "over the cluster's max_override of 2m0s")
		l, err := c.ListOverrides(ctx, &optoutv1.ListOverridesRequest{IncludeEnded: true})
		if err != nil || len(l.Overrides) != 0 {
			t.Fatalf("refused overrides reached state: %v, %v", l, err)
		}
	})

	allow, err := c.CreateOverride(ctx, req(func(*optoutv1.CreateOverrideRequest) {}))
	if err != nil || allow.State != optoutv1.OverrideState_OVERRIDE_STATE_ACTIVE {
		t.Fatalf("create ALLOW: %v, %v", allow, err)
	}
	d, err := c.Gate(ctx, subject, purpose, client.WithReceipt())
	if err != nil || !d.Allow || d.Check.OverrideId != allow.Id || d.Check.Basis != optoutv1.Basis_BASIS_OVERRIDE {
		t.Fatalf("gate under the ALLOW override %d: %+v, %v", allow.Id, d.Check, err)
	}
	if p, err := receipt.Parse(d.Check.Receipt); err != nil || p.Body.OverrideId != allow.Id {
		t.Fatalf("the receipt does not name the override: %v, %v", p.Body, err)
	}

	// A kill switch for the whole purpose, then revoked.
	kill, err := c.CreateOverride(ctx, req(func(r *optoutv1.CreateOverrideRequest) {
		r.SubjectId, r.Effect = "", optoutv1.OverrideEffect_OVERRIDE_EFFECT_DENY
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{subject, "ovr-someone"} {
		if d, err := c.Gate(ctx, s, purpose); err != nil || d.Allow || d.Check.OverrideId != kill.Id {
			t.Fatalf("gate %s under the kill switch: %+v, %v", s, d.Check, err)
		}
	}
	_, err = c.RevokeOverride(ctx, kill.Id, "")
	wantCode(t, err, connect.CodeInvalidArgument, "reason: required")
	if r, err := c.RevokeOverride(ctx, kill.Id, "incident over"); err != nil || r.State != optoutv1.OverrideState_OVERRIDE_STATE_REVOKED {
		t.Fatalf("revoke: %v, %v", r, err)
	}
	if d, err := c.Gate(ctx, "ovr-someone", purpose); err != nil || !d.Allow {
		t.Fatalf("gate after the revoke: %+v, %v", d.Check, err)
	}
	if !bytes.Contains(metricsOf(t, pc.procs[0]), []byte("optoutd_overrides_active{effect=\"allow\"} 1")) {
		t.Error("/metrics does not show the active ALLOW override")
	}

	// A node down across the expiry must not honour the override when it
	// comes back.
	leader := pc.leader(ctx)
	down := pc.followers(leader)[0]
	stopBySIGTERM(t, down, 20*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := c.ListOverrides(ctx, &optoutv1.ListOverridesRequest{IncludeEnded: true})
		if err == nil && len(l.Overrides) == 2 && l.Overrides[1].State == optoutv1.OverrideState_OVERRIDE_STATE_EXPIRED {
			ex := l.Overrides[1]
			if ex.Id != allow.Id || ex.EndedVersion == 0 || ex.EndedAt.AsTime().Before(allow.ExpiresAt.AsTime()) {
				t.Fatalf("the expired override: %v", ex)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ALLOW override never expired in the log: %v, %v", l, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pc.start(down)
	pc.waitReady(30 * time.Second)
	if d, err := pc.clientOf(down).Gate(ctx, subject, purpose); err != nil || d.Allow || d.Check.OverrideId != 0 {
		t.Fatalf("%s, back after the expiry, answers %+v, %v", down.id, d.Check, err)
	}
	for _, p := range pc.procs {
		if !bytes.Contains(metricsOf(t, p), []byte("optoutd_overrides_expired_total 1")) {
			t.Errorf("%s does not count the forgotten bypass", p.id)
		}
	}
	ch, err := c.History(ctx, &optoutv1.HistoryRequest{SubjectId: subject})
	if err != nil || len(ch.Entries) != 1 || ch.Entries[0].Kind != optoutv1.AuditKind_AUDIT_KIND_SET {
		t.Fatalf("the subject's history holds other than its own change: %v, %v", ch, err)
	}
	if v, err := c.VerifyAudit(ctx); err != nil || !v.Ok {
		t.Fatalf("audit chain with override entries: %v, %v", v, err)
	}
}
