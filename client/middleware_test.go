package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/optoutd/optoutd/client"
)

// fakeGater answers from a table; calls counts the questions.
type fakeGater struct {
	allow map[string]bool // subject -> allowed
	fail  bool
	calls atomic.Int64
}

func (f *fakeGater) Gate(_ context.Context, subject, purpose string, _ ...client.GateOption) (client.Decision, error) {
	f.calls.Add(1)
	if f.fail {
		return client.Decision{FailedClosed: true}, errors.New("cluster unreachable")
	}
	if f.allow[subject] {
		return client.Decision{Allow: true, Check: &optoutv1.CheckResponse{Decision: optoutv1.Decision_DECISION_ALLOW, ReadIndex: 9}}, nil
	}
	return client.Decision{Check: &optoutv1.CheckResponse{Decision: optoutv1.Decision_DECISION_DENY}}, nil
}

// TestHTTPGate: allowed subjects reach the handler (with the decision in
// the context), denied ones get 403, a failed gate 503 with Retry-After,
// no subject 400, and "Sec-GPC: 1" is refused without asking the cluster
// when the purpose honours it.
func TestHTTPGate(t *testing.T) {
	g := &fakeGater{allow: map[string]bool{"ok": true}}
	var reached atomic.Int64
	h := client.HTTPGate{Gater: g, Purpose: "sale_or_sharing", HonourGPC: true,
		Subject: func(r *http.Request) (string, error) { return r.Header.Get("X-Subject"), nil },
	}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, ok := client.DecisionFrom(r.Context()); !ok || !d.Allow || d.Check.ReadIndex != 9 {
			t.Errorf("handler saw decision %+v, %v", d, ok)
		}
		reached.Add(1)
	}))
	for _, tc := range []struct {
		name    string
		subject string
		gpc     bool
		fail    bool
		code    int
		asked   bool
	}{
		{"allowed", "ok", false, false, http.StatusOK, true},
		{"denied", "no", false, false, http.StatusForbidden, true},
		{"failed closed", "ok", false, true, http.StatusServiceUnavailable, true},
		{"no subject", "", false, false, http.StatusBadRequest, false},
		{"GPC", "ok", true, false, http.StatusForbidden, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g.fail = tc.fail
			before, reachedBefore := g.calls.Load(), reached.Load()
			r := httptest.NewRequest("POST", "/event", nil)
			r.Header.Set("X-Subject", tc.subject)
			if tc.gpc {
				r.Header.Set("Sec-GPC", "1")
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.code, w.Body)
			}
			if asked := g.calls.Load() > before; asked != tc.asked {
				t.Fatalf("asked the cluster: %v, want %v", asked, tc.asked)
			}
			if got := reached.Load() > reachedBefore; got != (tc.code == http.StatusOK) {
				t.Fatalf("handler reached: %v", got)
			}
			if tc.fail && w.Header().Get("Retry-After") == "" {
				t.Fatal("no Retry-After on a failed-closed refusal")
			}
		})
	}
}

// guarded is a Connect service the interceptor guards in the test.
type guarded struct {
	optoutv1connect.UnimplementedOptOutServiceHandler
	ran atomic.Int64
}

func (s *guarded) Get(context.Context, *connect.Request[optoutv1.GetRequest]) (*connect.Response[optoutv1.GetResponse], error) {
	s.ran.Add(1)
	return connect.NewResponse(&optoutv1.GetResponse{ReadIndex: 1}), nil
}

// TestGateInterceptor: a unary handler runs only for an allowed subject;
// a deny is PermissionDenied, a failed gate Unavailable.
func TestGateInterceptor(t *testing.T) {
	g := &fakeGater{allow: map[string]bool{"ok": true}}
	svc := &guarded{}
	mux := http.NewServeMux()
	mux.Handle(optoutv1connect.NewOptOutServiceHandler(svc, connect.WithInterceptors(client.GateInterceptor(g, "analytics",
		func(r connect.AnyRequest) (string, error) {
			return r.Any().(*optoutv1.GetRequest).GetSubjectId(), nil
		}))))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := optoutv1connect.NewOptOutServiceClient(srv.Client(), srv.URL)
	get := func(subject string) error {
		_, err := c.Get(context.Background(), connect.NewRequest(&optoutv1.GetRequest{SubjectId: subject, Purpose: "analytics"}))
		return err
	}
	if err := get("ok"); err != nil || svc.ran.Load() != 1 {
		t.Fatalf("allowed: %v, ran %d", err, svc.ran.Load())
	}
	if err := get("no"); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("denied: %v", err)
	}
	if err := get(""); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("no subject: %v", err)
	}
	g.fail = true
	if err := get("ok"); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("failed closed: %v", err)
	}
	if svc.ran.Load() != 1 {
		t.Fatalf("the handler ran %d times, want once", svc.ran.Load())
	}
}
