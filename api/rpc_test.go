package api_test

import (
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TestEveryRPCOverEveryProtocol calls each RPC with the generated clients
// in Connect (binary and JSON), gRPC and gRPC-Web, over h2c and HTTP/1.1,
// and checks both the answers and that the call really used that wire.
func TestEveryRPCOverEveryProtocol(t *testing.T) {
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			store := memStore()
			s := serve(t, store, api.Options{})
			c := p.clients(t, s)
			exerciseRPCs(t, p, s, c)
		})
	}
}

func exerciseRPCs(t *testing.T, p protocol, s *server, c clients) {
	ctx := ctx(t)
	u1 := &optoutv1.CheckRequest{SubjectId: "u1", Purpose: "email_marketing"}

	// No record yet: allow, with zero state and version.
	chk, err := c.optout.Check(ctx, connect.NewRequest(u1))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	p.checkWire(t, s)
	want := &optoutv1.CheckResponse{Decision: optoutv1.Decision_DECISION_ALLOW, State: optoutv1.State_STATE_UNSPECIFIED, Version: 0, ReadIndex: firstIndex,
		Basis: optoutv1.Basis_BASIS_PURPOSE_DEFAULT, DecidedByPurpose: "email_marketing", CatalogVersion: catalogVersion}
	if !proto.Equal(chk.Msg, want) {
		t.Errorf("Check before any write = %v, want %v", chk.Msg, want)
	}

	// Set.
	set, err := c.optout.Set(ctx, connect.NewRequest(&optoutv1.SetRequest{
		SubjectId: "u1", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT,
		Source: "web-form", Reason: "unsubscribe link",
	}))
	if err != nil {
		t.Fatalf("Set: %v", err)
	}
	p.checkWire(t, s)
	v := set.Msg.Version
	if v != firstIndex+1 || set.Msg.Replayed || set.Msg.CatalogVersion != catalogVersion {
		t.Errorf("Set = %v, want version %d", set.Msg, firstIndex+1)
	}
	wantRec := &optoutv1.Record{
		SubjectId: "u1", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT, Version: v,
		UpdatedAt: timestamppb.New(fixedTime), Source: "web-form", Reason: "unsubscribe link",
	}
	if !proto.Equal(set.Msg.Record, wantRec) {
		t.Errorf("Set record = %v, want %v", set.Msg.Record, wantRec)
	}

	// Check sees it.
	chk, err = c.optout.Check(ctx, connect.NewRequest(u1))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	want = &optoutv1.CheckResponse{Decision: optoutv1.Decision_DECISION_DENY, State: optoutv1.State_STATE_OPTED_OUT, Version: v, ReadIndex: v,
		Basis: optoutv1.Basis_BASIS_PURPOSE_RECORD, DecidedByPurpose: "email_marketing", CatalogVersion: catalogVersion}
	if !proto.Equal(chk.Msg, want) {
		t.Errorf("Check after Set = %v, want %v", chk.Msg, want)
	}

	// Opt in on another purpose, then a batch in request order.
	if _, err := c.optout.Set(ctx, connect.NewRequest(&optoutv1.SetRequest{SubjectId: "u1", Purpose: "sms_marketing", State: optoutv1.State_STATE_OPTED_IN})); err != nil {
		t.Fatalf("Set sms: %v", err)
	}
	batch, err := c.optout.CheckBatch(ctx, connect.NewRequest(&optoutv1.CheckBatchRequest{Checks: []*optoutv1.CheckRequest{
		{SubjectId: "u2", Purpose: "email_marketing"},
		{SubjectId: "u1", Purpose: "sms_marketing"},
		u1,
		{SubjectId: "u2", Purpose: "sms_marketing"},
	}}))
	if err != nil {
		t.Fatalf("CheckBatch: %v", err)
	}
	p.checkWire(t, s)
	idx := v + 1
	const email, sms = "email_marketing", "sms_marketing"
	wantBatch := &optoutv1.CheckBatchResponse{ReadIndex: idx, CatalogVersion: catalogVersion, Results: []*optoutv1.CheckResponse{
		{Decision: optoutv1.Decision_DECISION_ALLOW, State: optoutv1.State_STATE_UNSPECIFIED, Version: 0, ReadIndex: idx, Basis: optoutv1.Basis_BASIS_PURPOSE_DEFAULT, DecidedByPurpose: email, CatalogVersion: catalogVersion},
		{Decision: optoutv1.Decision_DECISION_ALLOW, State: optoutv1.State_STATE_OPTED_IN, Version: idx, ReadIndex: idx, Basis: optoutv1.Basis_BASIS_PURPOSE_RECORD, DecidedByPurpose: sms, CatalogVersion: catalogVersion},
		{Decision: optoutv1.Decision_DECISION_DENY, State: optoutv1.State_STATE_OPTED_OUT, Version: v, ReadIndex: idx, Basis: optoutv1.Basis_BASIS_PURPOSE_RECORD, DecidedByPurpose: email, CatalogVersion: catalogVersion},
		// An opt-in purpose with no record: its default denies.
		{Decision: optoutv1.Decision_DECISION_DENY, State: optoutv1.State_STATE_UNSPECIFIED, Version: 0, ReadIndex: idx, Basis: optoutv1.Basis_BASIS_PURPOSE_DEFAULT, DecidedByPurpose: sms, CatalogVersion: catalogVersion},
	}}
	if !proto.Equal(batch.Msg, wantBatch) {
		t.Errorf("CheckBatch = %v, want %v", batch.Msg, wantBatch)
	}

	// Get.
	get, err := c.optout.Get(ctx, connect.NewRequest(&optoutv1.GetRequest{SubjectId: "u1", Purpose: "email_marketing"}))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	p.checkWire(t, s)
	if !proto.Equal(get.Msg.Record, wantRec) || get.Msg.ReadIndex != idx {
		t.Errorf("Get = %v, want record %v at read index %d", get.Msg, wantRec, idx)
	}
	_, err = c.optout.Get(ctx, connect.NewRequest(&optoutv1.GetRequest{SubjectId: "nobody", Purpose: "email_marketing"}))
	ce := wireError(t, err, connect.CodeNotFound)
	if _, wo := details(t, ce); wo != nil {
		t.Errorf("Get not_found carries a WriteOutcome: %v", wo)
	}

	// Compare-and-set: a stale expected version is refused with the
	// current version, and changes nothing.
	stale := uint64(3)
	_, err = c.optout.Set(ctx, connect.NewRequest(&optoutv1.SetRequest{SubjectId: "u1", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_IN, ExpectedVersion: &stale}))
	ce = wireError(t, err, connect.CodeFailedPrecondition)
	if !strings.Contains(ce.Message(), "current version "+u64(v)) {
		t.Errorf("CAS conflict message %q does not contain %q", ce.Message(), "current version "+u64(v))
	}
	vm, wo := details(t, ce)
	if vm.GetCurrentVersion() != v || wo.GetOutcome() != optoutv1.Outcome_OUTCOME_NOT_APPLIED {
		t.Errorf("CAS conflict details: VersionMismatch %v, WriteOutcome %v; want current %d and NOT_APPLIED", vm, wo, v)
	}
	// "0" means the record must not exist yet.
	zero := uint64(0)
	if _, err = c.optout.Set(ctx, connect.NewRequest(&optoutv1.SetRequest{SubjectId: "u1", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_IN, ExpectedVersion: &zero})); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Errorf("Set with expected version 0 on an existing record: %v, want failed_precondition", err)
	}
	if _, err = c.optout.Set(ctx, connect.NewRequest(&optoutv1.SetRequest{SubjectId: "u3", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_IN, ExpectedVersion: &zero})); err != nil {
		t.Errorf("Set with expected version 0 on a new record: %v", err)
	}
	// The right version applies.
	cur := v
	set, err = c.optout.Set(ctx, connect.NewRequest(&optoutv1.SetRequest{SubjectId: "u1", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_IN, ExpectedVersion: &cur}))
	if err != nil || set.Msg.Version <= v {
		t.Errorf("Set with the current version: %v, %v", set, err)
	}

	// Status.
	st, err := c.cluster.Status(ctx, connect.NewRequest(&optoutv1.StatusRequest{}))
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	p.checkWire(t, s)
	if st.Msg.NodeId != "n1" || st.Msg.LeaderId != "n2" || st.Msg.Term != 3 || len(st.Msg.Nodes) != 3 ||
		!st.Msg.Nodes[1].Leader || st.Msg.Nodes[0].ApiAddress != "127.0.0.1:7001" || st.Msg.Nodes[2].Voter || st.Msg.RaftState != "Follower" {
		t.Errorf("Status = %v", st.Msg)
	}

	// StateDigest.
	dg, err := c.cluster.StateDigest(ctx, connect.NewRequest(&optoutv1.StateDigestRequest{}))
	if err != nil {
		t.Fatalf("StateDigest: %v", err)
	}
	if !strings.HasPrefix(dg.Msg.Sha256, "abcd00") || len(dg.Msg.Sha256) != 64 || dg.Msg.Records != 3 || dg.Msg.NodeId != "n1" {
		t.Errorf("StateDigest = %v", dg.Msg)
	}
}

// TestCheckOverHTTPGet uses the Connect GET form for the side-effect-free
// RPCs, as a browser or a cache would.
func TestCheckOverHTTPGet(t *testing.T) {
	for _, p := range []protocol{
		{name: "json/http1", opts: []connect.ClientOption{connect.WithProtoJSON(), connect.WithHTTPGet()}},
		{name: "proto/h2c", h2c: true, opts: []connect.ClientOption{connect.WithHTTPGet()}},
	} {
		t.Run(p.name, func(t *testing.T) {
			store := memStore()
			s := serve(t, store, api.Options{})
			c := p.clients(t, s)
			ctx := ctx(t)
			if _, err := c.optout.Set(ctx, connect.NewRequest(&optoutv1.SetRequest{SubjectId: "u1", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT})); err != nil {
				t.Fatal(err)
			}
			if _, method, _ := s.seen.last(); method != "POST" {
				t.Errorf("Set went as %s, want POST", method)
			}
			for name, call := range map[string]func() error{
				"Check": func() error {
					r, err := c.optout.Check(ctx, connect.NewRequest(&optoutv1.CheckRequest{SubjectId: "u1", Purpose: "email_marketing"}))
					if err == nil && r.Msg.Decision != optoutv1.Decision_DECISION_DENY {
						t.Errorf("Check over GET: %v", r.Msg)
					}
					return err
				},
				"CheckBatch": func() error {
					_, err := c.optout.CheckBatch(ctx, connect.NewRequest(&optoutv1.CheckBatchRequest{Checks: []*optoutv1.CheckRequest{{SubjectId: "u1", Purpose: "email_marketing"}}}))
					return err
				},
				"Get": func() error {
					_, err := c.optout.Get(ctx, connect.NewRequest(&optoutv1.GetRequest{SubjectId: "u1", Purpose: "email_marketing"}))
					return err
				},
				"Status": func() error {
					_, err := c.cluster.Status(ctx, connect.NewRequest(&optoutv1.StatusRequest{}))
					return err
				},
			} {
				if err := call(); err != nil {
					t.Errorf("%s over GET: %v", name, err)
				}
				if _, method, _ := s.seen.last(); method != "GET" {
					t.Errorf("%s went as %s, want GET", name, method)
				}
			}
		})
	}
}
