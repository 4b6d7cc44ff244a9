package workload

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/optoutd/optoutd/jepsen/checker"
	"github.com/optoutd/optoutd/jepsen/history"
)

func writeErr(code connect.Code, outcome optoutv1.Outcome, current *uint64) error {
	ce := connect.NewError(code, errors.New("x"))
	if current != nil {
		d, _ := connect.NewErrorDetail(&optoutv1.VersionMismatch{CurrentVersion: *current})
		ce.AddDetail(d)
	}
	if outcome != optoutv1.Outcome_OUTCOME_UNSPECIFIED {
		d, _ := connect.NewErrorDetail(&optoutv1.WriteOutcome{Outcome: outcome})
		ce.AddDetail(d)
	}
	return ce
}

func TestClassifyWrite(t *testing.T) {
	seven := uint64(7)
	cases := []struct {
		name string
		err  error
		want history.Outcome
		ver  uint64
	}{
		{"unavailable, not applied", writeErr(connect.CodeUnavailable, optoutv1.Outcome_OUTCOME_NOT_APPLIED, nil), history.NotApplied, 0},
		{"unknown", writeErr(connect.CodeUnknown, optoutv1.Outcome_OUTCOME_UNKNOWN, nil), history.Unknown, 0},
		{"deadline, unknown", writeErr(connect.CodeDeadlineExceeded, optoutv1.Outcome_OUTCOME_UNKNOWN, nil), history.Unknown, 0},
		{"client-side deadline, no detail", connect.NewError(connect.CodeDeadlineExceeded, errors.New("x")), history.Unknown, 0},
		{"unavailable without outcome (a proxy?)", connect.NewError(connect.CodeUnavailable, errors.New("x")), history.Unknown, 0},
		{"broken connection", errors.New("read: connection reset by peer"), history.Unknown, 0},
		{"cas conflict", writeErr(connect.CodeFailedPrecondition, optoutv1.Outcome_OUTCOME_NOT_APPLIED, &seven), history.Mismatch, 7},
	}
	for _, c := range cases {
		got, v := ClassifyWrite(c.err)
		if got != c.want || v != c.ver {
			t.Errorf("%s: got %s v%d, want %s v%d", c.name, got, v, c.want, c.ver)
		}
	}
}

// memStore is a linearizable in-memory OptOutService (one mutex, deny
// wins like optoutd: a blind opt-in cannot replace an opt-out), with an
// optional bug: stale serves every other read from a snapshot taken at the
// first write.
type memStore struct {
	optoutv1connect.UnimplementedOptOutServiceHandler
	mu    sync.Mutex
	index uint64
	recs  map[string]*optoutv1.Record
	stale bool
	old   map[string]*optoutv1.Record
	flip  bool
}

func (s *memStore) read(key string) *optoutv1.Record {
	if s.stale && s.old != nil {
		s.flip = !s.flip
		if s.flip {
			return s.old[key]
		}
	}
	return s.recs[key]
}

func (s *memStore) Set(_ context.Context, req *connect.Request[optoutv1.SetRequest]) (*connect.Response[optoutv1.SetResponse], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := req.Msg
	key := m.SubjectId + "/" + m.Purpose
	s.index++
	cur := s.recs[key]
	deny := m.ExpectedVersion == nil && cur.GetState() == optoutv1.State_STATE_OPTED_OUT && m.State == optoutv1.State_STATE_OPTED_IN
	if m.ExpectedVersion != nil && *m.ExpectedVersion != cur.GetVersion() || deny {
		v := cur.GetVersion()
		return nil, writeErr(connect.CodeFailedPrecondition, optoutv1.Outcome_OUTCOME_NOT_APPLIED, &v)
	}
	if s.old == nil {
		s.old = map[string]*optoutv1.Record{}
		for k, v := range s.recs {
			s.old[k] = v
		}
	}
	rec := &optoutv1.Record{SubjectId: m.SubjectId, Purpose: m.Purpose, State: m.State, Version: s.index, Source: m.Source, Reason: m.Reason}
	s.recs[key] = rec
	return connect.NewResponse(&optoutv1.SetResponse{Version: s.index, Record: rec}), nil
}

func (s *memStore) Get(_ context.Context, req *connect.Request[optoutv1.GetRequest]) (*connect.Response[optoutv1.GetResponse], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.read(req.Msg.SubjectId + "/" + req.Msg.Purpose)
	if rec == nil {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no record"))
	}
	return connect.NewResponse(&optoutv1.GetResponse{Record: rec, ReadIndex: s.index}), nil
}

func (s *memStore) Check(_ context.Context, req *connect.Request[optoutv1.CheckRequest]) (*connect.Response[optoutv1.CheckResponse], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.read(req.Msg.SubjectId + "/" + req.Msg.Purpose)
	return connect.NewResponse(&optoutv1.CheckResponse{State: rec.GetState(), Version: rec.GetVersion(), ReadIndex: s.index}), nil
}

func (s *memStore) CheckBatch(_ context.Context, req *connect.Request[optoutv1.CheckBatchRequest]) (*connect.Response[optoutv1.CheckBatchResponse], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &optoutv1.CheckBatchResponse{ReadIndex: s.index}
	for _, c := range req.Msg.Checks {
		rec := s.recs[c.SubjectId+"/"+c.Purpose]
		out.Results = append(out.Results, &optoutv1.CheckResponse{State: rec.GetState(), Version: rec.GetVersion()})
	}
	return connect.NewResponse(out), nil
}

// runAgainst drives the workload for a bounded number of operations
// against store and returns the history and final set reads.
func runAgainst(t *testing.T, store *memStore) ([]history.Op, []checker.SetFinal, []string) {
	t.Helper()
	mux := http.NewServeMux()
	path, h := optoutv1connect.NewOptOutServiceHandler(store)
	mux.Handle(path, h)
	srv := httptest.NewUnstartedServer(mux)
	// The client may speak HTTP/1.1 or h2c with prior knowledge: serve both.
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &protos
	srv.Start()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	eps := []Endpoint{{Node: "n1", Addr: addr}, {Node: "n2", Addr: addr}}
	rec := history.NewRecorder()
	wl, err := New(Config{Endpoints: eps, Concurrency: 4, Keys: 2, Seed: 1, Mix: DefaultMix()}, rec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wl.Run(ctx) }()
	// Stop after enough operations (polled, with a generous deadline).
	deadline := time.Now().Add(time.Minute)
	for rec.Len() < 400 {
		select {
		case err := <-done:
			t.Fatalf("workload ended early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d ops within a minute", rec.Len())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if failed := wl.Register().FinalReads(fctx, rec, eps, 100); len(failed) > 0 {
		t.Fatalf("final reads failed: %v", failed)
	}
	return rec.Ops(), wl.Set().FinalReads(fctx, eps), Probes()
}

func TestWorkloadAgainstCorrectStore(t *testing.T) {
	ops, finals, probes := runAgainst(t, &memStore{recs: map[string]*optoutv1.Record{}})
	types := map[history.Type]int{}
	finalReads := 0
	for _, op := range ops {
		types[op.Type]++
		if op.Final {
			finalReads++
		}
	}
	for _, typ := range []history.Type{history.Get, history.Check, history.Write, history.CAS, history.Add} {
		if types[typ] == 0 {
			t.Fatalf("no %s ops in %v", typ, types)
		}
	}
	if finalReads != 2*2 {
		t.Fatalf("%d final reads, want one per key per node", finalReads)
	}
	if res := checker.CheckLinearizable(context.Background(), ops, checker.DefaultOptions()); !res.Valid {
		t.Fatalf("a linearizable store failed the check: %+v", res.Failed)
	}
	if res := checker.CheckSet(ops, finals, probes); !res.Valid || res.Acked == 0 {
		t.Fatalf("set: %+v", res)
	}
	if res := checker.CheckMonotonic(ops); !res.Valid {
		t.Fatalf("monotonic: %+v", res)
	}
}

func TestWorkloadCatchesStaleStore(t *testing.T) {
	ops, _, _ := runAgainst(t, &memStore{recs: map[string]*optoutv1.Record{}, stale: true})
	if res := checker.CheckLinearizable(context.Background(), ops, checker.DefaultOptions()); res.Valid {
		t.Fatal("a store serving stale reads passed the linearizability check")
	}
}
