package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/optoutd/optoutd/client"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestDomainRulesThroughTheAPI checks each rule of the opt-out domain end to
// end: real processes, the real API, the bad inputs included.
func TestDomainRulesThroughTheAPI(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := pc.all()

	t.Run("undefined purpose is not_found, never allow", func(t *testing.T) {
		_, err := c.Check(ctx, &optoutv1.CheckRequest{SubjectId: "u1", Purpose: "emial_marketing"})
		wantCode(t, err, connect.CodeNotFound, `purpose "emial_marketing" is not defined`)
		_, err = c.Set(ctx, &optoutv1.SetRequest{SubjectId: "u1", Purpose: "emial_marketing", State: optoutv1.State_STATE_OPTED_OUT})
		wantCode(t, err, connect.CodeNotFound, "is not defined")
		if client.Outcome(err) != optoutv1.Outcome_OUTCOME_NOT_APPLIED {
			t.Fatalf("outcome %v, want NOT_APPLIED", client.Outcome(err))
		}
	})

	t.Run("starter catalog and defaults", func(t *testing.T) {
		r, err := c.Check(ctx, &optoutv1.CheckRequest{SubjectId: "fresh", Purpose: "sms_marketing"})
		if err != nil || r.Decision != optoutv1.Decision_DECISION_DENY || r.Basis != optoutv1.Basis_BASIS_PURPOSE_DEFAULT {
			t.Fatalf("sms_marketing with no record: %v %v", r, err)
		}
		r, err = c.Check(ctx, &optoutv1.CheckRequest{SubjectId: "fresh", Purpose: "email_marketing"})
		if err != nil || r.Decision != optoutv1.Decision_DECISION_ALLOW {
			t.Fatalf("email_marketing with no record: %v %v", r, err)
		}
		l, err := c.ListPurposes(ctx)
		if err != nil || len(l.Purposes) != 6 {
			t.Fatalf("starter catalog: %v %v", l, err)
		}
	})

	t.Run("define purpose bumps the catalog version", func(t *testing.T) {
		before, err := c.ListPurposes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.DefinePurpose(ctx, &optoutv1.DefinePurposeRequest{Purpose: &optoutv1.Purpose{Name: "loyalty", DefaultDecision: optoutv1.Default_DEFAULT_DENY}})
		if err != nil || d.CatalogVersion != before.CatalogVersion+1 {
			t.Fatalf("define: %v %v (catalog was %d)", d, err, before.CatalogVersion)
		}
		_, err = c.DefinePurpose(ctx, &optoutv1.DefinePurposeRequest{Purpose: &optoutv1.Purpose{Name: "all", DefaultDecision: optoutv1.Default_DEFAULT_DENY}})
		wantCode(t, err, connect.CodeInvalidArgument, "reserved")
		_, err = c.DefinePurpose(ctx, &optoutv1.DefinePurposeRequest{Purpose: &optoutv1.Purpose{Name: "nodefault"}})
		wantCode(t, err, connect.CodeInvalidArgument, "default_decision")
	})

	t.Run("all denies every purpose and says so", func(t *testing.T) {
		mustSet(t, c, "wide", "email_marketing", optoutv1.State_STATE_OPTED_IN, nil)
		all := mustSet(t, c, "wide", "all", optoutv1.State_STATE_OPTED_OUT, nil)
		r, err := c.Check(ctx, &optoutv1.CheckRequest{SubjectId: "wide", Purpose: "email_marketing"})
		if err != nil || r.Decision != optoutv1.Decision_DECISION_DENY || r.DecidedByPurpose != "all" || r.Version != all.Version {
			t.Fatalf("check after opt-out of all: %v %v", r, err)
		}
	})

	t.Run("deny wins: re-consent needs the opt-out's version", func(t *testing.T) {
		out := mustSet(t, c, "dw", "analytics", optoutv1.State_STATE_OPTED_OUT, nil)
		_, err := c.Set(ctx, &optoutv1.SetRequest{SubjectId: "dw", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_IN})
		wantCode(t, err, connect.CodeFailedPrecondition, "re-consent")
		if v, ok := client.CurrentVersion(err); !ok || v != out.Version {
			t.Fatalf("current version detail %d %v, want %d", v, ok, out.Version)
		}
		mustSet(t, c, "dw", "analytics", optoutv1.State_STATE_OPTED_IN, &out.Version)
	})

	t.Run("idempotency key: same request replays, different request fails", func(t *testing.T) {
		req := &optoutv1.SetRequest{SubjectId: "idem", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT, IdempotencyKey: "msg-42"}
		a, err := c.Set(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Set(ctx, req)
		if err != nil || b.Version != a.Version || !b.Replayed {
			t.Fatalf("redelivery: %v %v, want version %d replayed", b, err, a.Version)
		}
		other := proto.Clone(req).(*optoutv1.SetRequest)
		other.Reason = "different"
		_, err = c.Set(ctx, other)
		wantCode(t, err, connect.CodeFailedPrecondition, "idempotency key")
		h, err := c.History(ctx, &optoutv1.HistoryRequest{SubjectId: "idem"})
		if err != nil || len(h.Entries) != 1 {
			t.Fatalf("history after a replay: %v %v, want one entry", h, err)
		}
		long := proto.Clone(req).(*optoutv1.SetRequest)
		long.IdempotencyKey = strings.Repeat("k", 129)
		_, err = c.Set(ctx, long)
		wantCode(t, err, connect.CodeInvalidArgument, "idempotency_key")
	})

	t.Run("schema gate", func(t *testing.T) {
		p := pc.procs[0]
		raw := optoutv1connect.NewOptOutServiceClient(httpClient(), "http://"+p.api)
		check := func(header string) error {
			req := connect.NewRequest(&optoutv1.CheckRequest{SubjectId: "u1", Purpose: "email_marketing"})
			if header != "" {
				req.Header().Set("Optout-Schema-Version", header)
			}
			resp, err := raw.Check(ctx, req)
			if err == nil && (resp.Header().Get("Optout-Schema-Version") != strconv.Itoa(int(optoutd.SchemaVersion)) || resp.Header().Get("Optout-Catalog-Version") == "") {
				t.Fatalf("response headers %v lack the schema or catalog version", resp.Header())
			}
			return err
		}
		if err := check(""); err != nil {
			t.Fatalf("no minimum set, no header: %v", err)
		}
		wantCode(t, check("abc"), connect.CodeInvalidArgument, "Optout-Schema-Version")
		if _, err := c.SetMinSchemaVersion(ctx, optoutd.SchemaVersion+1); err == nil {
			t.Fatal("a minimum above the server's schema was accepted")
		}
		if _, err := c.SetMinSchemaVersion(ctx, 2); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := c.SetMinSchemaVersion(ctx, 0); err != nil {
				t.Fatal(err)
			}
		}()
		wantCode(t, check(""), connect.CodeFailedPrecondition, "no Optout-Schema-Version header")
		wantCode(t, check("1"), connect.CodeFailedPrecondition, "schema version 1 is below the cluster's minimum 2")
		if err := check("2"); err != nil {
			t.Fatalf("current client refused: %v", err)
		}
		// Writes are refused too, by the state machine itself.
		_, err := raw.Set(ctx, connect.NewRequest(&optoutv1.SetRequest{SubjectId: "old", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT}))
		wantCode(t, err, connect.CodeFailedPrecondition, "Optout-Schema-Version")
	})

	t.Run("history, state-at and audit verify", func(t *testing.T) {
		a := mustSet(t, c, "aud", "email_marketing", optoutv1.State_STATE_OPTED_OUT, nil)
		b := mustSet(t, c, "aud", "email_marketing", optoutv1.State_STATE_OPTED_IN, &a.Version)
		h, err := c.History(ctx, &optoutv1.HistoryRequest{SubjectId: "aud", PageSize: 1})
		if err != nil || len(h.Entries) != 1 || h.Entries[0].Version != b.Version || h.NextPageToken == "" {
			t.Fatalf("first page: %v %v", h, err)
		}
		h2, err := c.History(ctx, &optoutv1.HistoryRequest{SubjectId: "aud", PageSize: 1, PageToken: h.NextPageToken})
		if err != nil || len(h2.Entries) != 1 || h2.Entries[0].Version != a.Version {
			t.Fatalf("second page: %v %v", h2, err)
		}
		_, err = c.History(ctx, &optoutv1.HistoryRequest{SubjectId: "aud", PageToken: "nope"})
		wantCode(t, err, connect.CodeInvalidArgument, "page_token")
		s, err := c.StateAt(ctx, &optoutv1.StateAtRequest{SubjectId: "aud", Purpose: "email_marketing", Version: a.Version})
		if err != nil || s.Decision != optoutv1.Decision_DECISION_DENY {
			t.Fatalf("state at the opt-out: %v %v", s, err)
		}
		s, err = c.StateAt(ctx, &optoutv1.StateAtRequest{SubjectId: "aud", Purpose: "email_marketing", Version: b.Version})
		if err != nil || s.Decision != optoutv1.Decision_DECISION_ALLOW {
			t.Fatalf("state at the re-consent: %v %v", s, err)
		}
		v, err := c.VerifyAudit(ctx)
		if err != nil || !v.Ok || v.Entries == 0 {
			t.Fatalf("verify: %v %v", v, err)
		}
	})

	t.Run("erase keeps the suppression", func(t *testing.T) {
		mustSet(t, c, "erase-me@example.com", "analytics", optoutv1.State_STATE_OPTED_IN, nil)
		e, err := c.EraseSubject(ctx, &optoutv1.EraseSubjectRequest{SubjectId: "erase-me@example.com", Reason: "art. 17"})
		if err != nil || e.ErasedRecords != 1 {
			t.Fatalf("erase: %v %v", e, err)
		}
		r, err := c.Check(ctx, &optoutv1.CheckRequest{SubjectId: "erase-me@example.com", Purpose: "analytics"})
		if err != nil || r.Decision != optoutv1.Decision_DECISION_DENY || r.Basis != optoutv1.Basis_BASIS_ERASED {
			t.Fatalf("check after erasure: %v %v", r, err)
		}
		h, err := c.History(ctx, &optoutv1.HistoryRequest{SubjectId: "erase-me@example.com"})
		if err != nil || len(h.Entries) != 2 {
			t.Fatalf("history after erasure: %v %v", h, err)
		}
		for _, en := range h.Entries {
			if en.SubjectId != "" || en.Reason != "" || !en.Erased {
				t.Fatalf("erased entry still carries personal data: %v", en)
			}
		}
		if v, err := c.VerifyAudit(ctx); err != nil || !v.Ok {
			t.Fatalf("verify after erasure: %v %v", v, err)
		}
	})

	t.Run("retention bounds, and a watch from 0 works while history is kept", func(t *testing.T) {
		if _, err := c.SetAuditRetention(ctx, -time.Hour); err == nil {
			t.Fatal("negative retention accepted")
		}
		if _, err := c.SetAuditRetention(ctx, time.Minute); err == nil {
			t.Fatal("retention under an hour accepted")
		}
		raw := optoutv1connect.NewAdminServiceClient(httpClient(), "http://"+pc.procs[0].api)
		_, err := raw.SetAuditRetention(ctx, connect.NewRequest(&optoutv1.SetAuditRetentionRequest{Retention: durationpb.New(0)}))
		if err != nil {
			t.Fatalf("retention 0 (forever): %v", err)
		}
		// With history kept forever nothing is compacted; a watch from 0 works.
		err = c.Watch(ctx, 0, nil, func(client.WatchEvent) error { return errStop })
		if !errors.Is(err, errStop) {
			t.Fatalf("watch from 0: %v", err)
		}
	})
}

var errStop = errors.New("stop")

func mustSet(t *testing.T, c *client.Client, subject, purpose string, st optoutv1.State, expected *uint64) *optoutv1.SetResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := c.Set(ctx, &optoutv1.SetRequest{SubjectId: subject, Purpose: purpose, State: st, ExpectedVersion: expected, Source: "e2e"})
	if err != nil {
		t.Fatalf("set %s/%s %v: %v", subject, purpose, st, err)
	}
	return r
}

func wantCode(t *testing.T, err error, code connect.Code, msg string) {
	t.Helper()
	if connect.CodeOf(err) != code || !strings.Contains(err.Error(), msg) {
		t.Fatalf("got %v, want %v containing %q", err, code, msg)
	}
}

// TestWatchAcrossLeaderKill: a watcher that reconnects across kill -9 of the
// leader sees every change exactly once, in order.
func TestWatchAcrossLeaderKill(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := pc.all()
	var (
		mu   sync.Mutex
		seen []*optoutv1.AuditEntry
	)
	wctx, wcancel := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- c.Watch(wctx, 0, nil, func(ev client.WatchEvent) error {
			if ev.Change != nil {
				mu.Lock()
				seen = append(seen, ev.Change)
				mu.Unlock()
			}
			return nil
		})
	}()
	acked := map[uint64]bool{}
	write := func(i int) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		r, err := c.Set(wctx, &optoutv1.SetRequest{SubjectId: fmt.Sprintf("w%d", i), Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT})
		if err == nil {
			acked[r.Version] = true
		}
	}
	for i := 0; i < 50; i++ {
		write(i)
	}
	leader := pc.leader(ctx)
	pc.kill(leader)
	for i := 50; i < 100; i++ {
		write(i)
	}
	pc.start(leader)
	pc.waitReady(30 * time.Second)
	for i := 100; i < 120; i++ {
		write(i)
	}
	// The reference: every change up to the last acknowledged write, read
	// from one node by a fresh watch (which waits for that node to apply it).
	var target uint64
	for v := range acked {
		target = max(target, v)
	}
	var want []*optoutv1.AuditEntry
	err := pc.clientOf(pc.procs[0]).Watch(ctx, 0, nil, func(ev client.WatchEvent) error {
		if ev.Change != nil {
			want = append(want, ev.Change)
		}
		if ev.Progress >= target || ev.Change != nil && ev.Change.Version >= target {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatal(err)
	}
	// Wait for the long-running watcher to catch up, then compare.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wcancel()
	if err := <-watchDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("watcher: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(want) {
		t.Fatalf("watcher saw %d changes, the log holds %d", len(seen), len(want))
	}
	for i := range want {
		if seen[i].Version != want[i].Version || !bytes.Equal(seen[i].Hash, want[i].Hash) {
			t.Fatalf("change %d: watcher saw version %d, log has %d", i, seen[i].Version, want[i].Version)
		}
	}
	got := map[uint64]bool{}
	for _, e := range seen {
		got[e.Version] = true
	}
	for v := range acked {
		if !got[v] {
			t.Fatalf("acknowledged write at version %d never reached the watcher", v)
		}
	}
	t.Logf("watcher saw %d changes exactly once across kill -9 of %s (%d acknowledged writes)", len(seen), leader.id, len(acked))
}

// TestAuditTamperingIsCaughtOffline: one entry edited in a copy of a node's
// data is reported by optoutd audit-verify as the first break.
func TestAuditTamperingIsCaughtOffline(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pc.all()
	var versions []uint64
	for i := 0; i < 5; i++ {
		versions = append(versions, mustSet(t, c, fmt.Sprintf("t%d", i), "analytics", optoutv1.State_STATE_OPTED_OUT, nil).Version)
	}
	p := pc.procs[2]
	// Stop the node so its files are quiet, and verify a copy.
	for {
		st, err := pc.clientOf(p).Status(ctx)
		if err == nil && st.AppliedIndex >= versions[4] {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	pc.kill(p)
	dataDir := p.args[4]
	cp := filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(cp, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "fsm.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cp, "fsm.db"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() (string, error) {
		var out bytes.Buffer
		m := NewMain(&out, &out)
		if err := m.ParseFlags([]string{"audit-verify", "--data-dir", cp}); err != nil {
			t.Fatal(err)
		}
		err := m.Run(ctx)
		return out.String(), err
	}
	if out, err := run(); err != nil || !strings.Contains(out, "audit chain OK") {
		t.Fatalf("untouched copy: %q %v", out, err)
	}
	victim := versions[2]
	db, err := bbolt.Open(filepath.Join(cp, "fsm.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte("audit"))
		key := make([]byte, 8)
		for i := 0; i < 8; i++ {
			key[7-i] = byte(victim >> (8 * i))
		}
		var a fsmv1.AuditEntry
		if err := proto.Unmarshal(bk.Get(key), &a); err != nil {
			return err
		}
		a.NewState = fsmv1.State_STATE_OPTED_IN // "they never opted out"
		v, err := proto.Marshal(&a)
		if err != nil {
			return err
		}
		return bk.Put(key, v)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := run()
	if !errors.Is(err, errAuditBroken) || !strings.Contains(out, fmt.Sprintf("BROKEN at version %d", victim)) {
		t.Fatalf("tampered copy: %q %v", out, err)
	}
}

func httpClient() *http.Client {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}
