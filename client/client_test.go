package client_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/optoutd/optoutd/api/wire"
	"github.com/optoutd/optoutd/client"
)

// node is a fake optoutd endpoint: the generated handlers with func
// fields, counting every call that reaches it.
type node struct {
	optoutv1connect.UnimplementedOptOutServiceHandler
	optoutv1connect.UnimplementedClusterServiceHandler
	name    string
	set     func() error
	read    func() error
	sets    atomic.Int64
	reads   atomic.Int64
	statuss atomic.Int64
	schema  atomic.Value // the last Check's Optout-Schema-Version
	keys    sync.Map     // idempotency keys seen by Set
	url     string
	// decision is what Check answers (DENY when unset).
	decision optoutv1.Decision
	// leader, when set, is sent as the Optout-Leader hint on every answer.
	leader atomic.Pointer[string]
}

func (n *node) Set(_ context.Context, req *connect.Request[optoutv1.SetRequest]) (*connect.Response[optoutv1.SetResponse], error) {
	n.sets.Add(1)
	n.keys.Store(req.Msg.IdempotencyKey, true)
	if n.set != nil {
		if err := n.set(); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(&optoutv1.SetResponse{Version: 17, Record: &optoutv1.Record{SubjectId: req.Msg.SubjectId, Version: 17}}), nil
}

func (n *node) EraseSubject(context.Context, *connect.Request[optoutv1.EraseSubjectRequest]) (*connect.Response[optoutv1.EraseSubjectResponse], error) {
	n.sets.Add(1)
	if n.set != nil {
		if err := n.set(); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(&optoutv1.EraseSubjectResponse{Version: 18, ErasedRecords: 2}), nil
}

func (n *node) Check(_ context.Context, req *connect.Request[optoutv1.CheckRequest]) (*connect.Response[optoutv1.CheckResponse], error) {
	n.schema.Store(req.Header().Get("Optout-Schema-Version"))
	n.reads.Add(1)
	if n.read != nil {
		if err := n.read(); err != nil {
			return nil, err
		}
	}
	d := n.decision
	if d == optoutv1.Decision_DECISION_UNSPECIFIED {
		d = optoutv1.Decision_DECISION_DENY
	}
	return connect.NewResponse(&optoutv1.CheckResponse{Decision: d, Version: 17, ReadIndex: 42}), nil
}

func (n *node) CheckBatch(context.Context, *connect.Request[optoutv1.CheckBatchRequest]) (*connect.Response[optoutv1.CheckBatchResponse], error) {
	n.reads.Add(1)
	if n.read != nil {
		if err := n.read(); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(&optoutv1.CheckBatchResponse{ReadIndex: 42}), nil
}

func (n *node) Get(context.Context, *connect.Request[optoutv1.GetRequest]) (*connect.Response[optoutv1.GetResponse], error) {
	n.reads.Add(1)
	if n.read != nil {
		if err := n.read(); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(&optoutv1.GetResponse{Record: &optoutv1.Record{Version: 17}, ReadIndex: 42}), nil
}

func (n *node) Status(context.Context, *connect.Request[optoutv1.StatusRequest]) (*connect.Response[optoutv1.StatusResponse], error) {
	n.statuss.Add(1)
	if n.read != nil {
		if err := n.read(); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(&optoutv1.StatusResponse{NodeId: n.name}), nil
}

func (n *node) calls() int64 { return n.sets.Load() + n.reads.Load() + n.statuss.Load() }

// start serves n over HTTP/1.1 and h2c.
func (n *node) start(t *testing.T) *node {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(optoutv1connect.NewOptOutServiceHandler(n))
	mux.Handle(optoutv1connect.NewClusterServiceHandler(n))
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l := n.leader.Load(); l != nil {
			w.Header().Set(wire.HeaderLeader, *l)
		}
		mux.ServeHTTP(w, r)
	}))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	s.Config.Protocols = &p
	s.Start()
	t.Cleanup(s.Close)
	n.url = s.URL
	return n
}

// refused returns an address on which nothing listens.
func refused(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// writeErr builds the error the API sends for a failed write.
func writeErr(code connect.Code, o optoutv1.Outcome, msg string) error {
	ce := connect.NewError(code, errors.New(msg))
	d, err := connect.NewErrorDetail(&optoutv1.WriteOutcome{Outcome: o})
	if err != nil {
		panic(err)
	}
	ce.AddDetail(d)
	return ce
}

func newClient(t *testing.T, endpoints []string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(endpoints, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

var (
	setReq   = &optoutv1.SetRequest{SubjectId: "u1", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT}
	checkReq = &optoutv1.CheckRequest{SubjectId: "u1", Purpose: "email_marketing"}
)

func TestNew(t *testing.T) {
	for _, eps := range [][]string{nil, {}, {""}, {" ", ""}} {
		if _, err := client.New(eps); err == nil {
			t.Errorf("New(%q) accepted no endpoints", eps)
		}
	}
	c := newClient(t, []string{"127.0.0.1:7001", " http://h:2 ", "", "https://h:3"})
	want := []string{"http://127.0.0.1:7001", "http://h:2", "https://h:3"}
	if got := c.Endpoints(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Endpoints = %v, want %v", got, want)
	}
}

// TestRefusedEndpointIsSkipped: a connection that was never made sent
// nothing, so reads and writes both move on.
func TestRefusedEndpointIsSkipped(t *testing.T) {
	good := (&node{name: "good"}).start(t)
	c := newClient(t, []string{refused(t), good.url})
	ctx := ctx(t)
	if r, err := c.Check(ctx, checkReq); err != nil || r.Decision != optoutv1.Decision_DECISION_DENY {
		t.Fatalf("Check: %v %v", r, err)
	}
	c = newClient(t, []string{refused(t), good.url})
	if r, err := c.Set(ctx, setReq); err != nil || r.Version != 17 {
		t.Fatalf("Set: %v %v", r, err)
	}
	if good.reads.Load() != 1 || good.sets.Load() != 1 {
		t.Errorf("good endpoint got %d reads and %d sets, want 1 and 1", good.reads.Load(), good.sets.Load())
	}
}

// TestUnknownOutcomeIsRetriedOnlyWithAKey: a write that may have applied
// goes back to the caller unless it carries an idempotency key. EraseSubject
// has none: the next endpoint never sees it. Set always has one (made up
// when the caller gave none), so it is sent again, with the same key, and
// the cluster would answer a retry of an applied write with its first
// result.
func TestUnknownOutcomeIsRetriedOnlyWithAKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"unknown", writeErr(connect.CodeUnknown, optoutv1.Outcome_OUTCOME_UNKNOWN, "the write may have been applied")},
		{"deadline", writeErr(connect.CodeDeadlineExceeded, optoutv1.Outcome_OUTCOME_UNKNOWN, "deadline passed while the write was in flight")},
		{"unavailable but unknown", writeErr(connect.CodeUnavailable, optoutv1.Outcome_OUTCOME_UNKNOWN, "state machine halted")},
		{"unavailable with no detail (a proxy)", connect.NewError(connect.CodeUnavailable, errors.New("upstream reset"))},
		{"internal", writeErr(connect.CodeInternal, optoutv1.Outcome_OUTCOME_UNKNOWN, "log store failure")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := (&node{name: "first", set: func() error { return tc.err }}).start(t)
			second := (&node{name: "second"}).start(t)
			c := newClient(t, []string{first.url, second.url})
			_, err := c.EraseSubject(ctx(t), &optoutv1.EraseSubjectRequest{SubjectId: "u1"})
			if err == nil {
				t.Fatal("EraseSubject succeeded")
			}
			if !client.IsOutcomeUnknown(err) || client.Outcome(err) != optoutv1.Outcome_OUTCOME_UNKNOWN {
				t.Errorf("IsOutcomeUnknown=%v Outcome=%v for %v", client.IsOutcomeUnknown(err), client.Outcome(err), err)
			}
			if connect.CodeOf(err) != connect.CodeOf(tc.err) {
				t.Errorf("code %v, want %v", connect.CodeOf(err), connect.CodeOf(tc.err))
			}
			if first.sets.Load() != 1 || second.calls() != 0 {
				t.Errorf("EraseSubject: first got %d, second %d calls; want 1 and 0", first.sets.Load(), second.calls())
			}

			first.sets.Store(0)
			if _, err := c.Set(ctx(t), setReq); err != nil {
				t.Fatalf("Set with a made-up key after %v: %v", tc.name, err)
			}
			if setReq.IdempotencyKey != "" {
				t.Fatal("Set changed the caller's request")
			}
			var keys []string
			for _, n := range []*node{first, second} {
				n.keys.Range(func(k, _ any) bool { keys = append(keys, k.(string)); return true })
			}
			if first.sets.Load() != 1 || second.sets.Load() != 1 || len(keys) != 2 || keys[0] != keys[1] || !strings.HasPrefix(keys[0], "c-") {
				t.Errorf("Set: first %d, second %d sets, keys %q; want one each, the same made-up key", first.sets.Load(), second.sets.Load(), keys)
			}
		})
	}
}

// TestBrokenConnectionIsNotRetried: the server read the write and then the
// connection (HTTP/1.1) or stream (HTTP/2) died; the write may have applied,
// so one without an idempotency key is not sent again.
func TestBrokenConnectionIsNotRetried(t *testing.T) {
	var hits atomic.Int64
	broken := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		panic(http.ErrAbortHandler)
	}))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	broken.Config.Protocols = &p
	broken.Config.ErrorLog = log.New(io.Discard, "", 0)
	broken.Start()
	t.Cleanup(broken.Close)
	second := (&node{name: "second"}).start(t)
	c := newClient(t, []string{broken.URL, second.url})
	_, err := c.EraseSubject(ctx(t), &optoutv1.EraseSubjectRequest{SubjectId: "u1"})
	if err == nil || !client.IsOutcomeUnknown(err) {
		t.Fatalf("EraseSubject over a broken connection: %v, want an unknown outcome", err)
	}
	if hits.Load() != 1 || second.calls() != 0 {
		t.Errorf("broken endpoint hit %d times, second %d calls; want 1 and 0", hits.Load(), second.calls())
	}
	// A read over the same broken endpoint is safe to retry.
	if _, err := c.Check(ctx(t), checkReq); err != nil {
		t.Errorf("Check: %v", err)
	}
	if second.reads.Load() != 1 {
		t.Errorf("second endpoint got %d reads, want 1", second.reads.Load())
	}
}

// TestNotAppliedIsRetried: unavailable + NOT_APPLIED certainly did not
// apply, so the next endpoint gets it, and later calls start there.
func TestNotAppliedIsRetried(t *testing.T) {
	first := (&node{name: "first", set: func() error {
		return writeErr(connect.CodeUnavailable, optoutv1.Outcome_OUTCOME_NOT_APPLIED, "no leader; write not applied")
	}}).start(t)
	second := (&node{name: "second"}).start(t)
	c := newClient(t, []string{first.url, second.url})
	if r, err := c.Set(ctx(t), setReq); err != nil || r.Version != 17 {
		t.Fatalf("Set: %v %v", r, err)
	}
	if first.sets.Load() != 1 || second.sets.Load() != 1 {
		t.Errorf("sets: first %d, second %d; want 1 and 1", first.sets.Load(), second.sets.Load())
	}
	// The client now starts with the endpoint that answered.
	if _, err := c.Set(ctx(t), setReq); err != nil {
		t.Fatal(err)
	}
	if first.sets.Load() != 1 || second.sets.Load() != 2 {
		t.Errorf("after failover: first %d sets, second %d; want 1 and 2", first.sets.Load(), second.sets.Load())
	}
}

// TestDefinitiveAnswersAreNotRetried: a refusal that is the same on every
// node (bad input, a CAS conflict) is returned at once.
func TestDefinitiveAnswersAreNotRetried(t *testing.T) {
	var mismatch *connect.Error
	if !errors.As(writeErr(connect.CodeFailedPrecondition, optoutv1.Outcome_OUTCOME_NOT_APPLIED, "expected version 3, current version 17"), &mismatch) {
		t.Fatal("writeErr did not build a *connect.Error")
	}
	d, _ := connect.NewErrorDetail(&optoutv1.VersionMismatch{CurrentVersion: 17})
	mismatch.AddDetail(d)
	first := (&node{name: "first", set: func() error { return mismatch }, read: func() error {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("purpose: bad"))
	}}).start(t)
	second := (&node{name: "second"}).start(t)
	c := newClient(t, []string{first.url, second.url})
	_, err := c.Set(ctx(t), setReq)
	if connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("Set: %v, want failed_precondition", err)
	}
	if v, ok := client.CurrentVersion(err); !ok || v != 17 {
		t.Errorf("CurrentVersion = %d, %v; want 17, true", v, ok)
	}
	if client.IsOutcomeUnknown(err) || client.Outcome(err) != optoutv1.Outcome_OUTCOME_NOT_APPLIED {
		t.Errorf("Outcome = %v", client.Outcome(err))
	}
	if _, err := c.Check(ctx(t), checkReq); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("Check: %v, want invalid_argument", err)
	}
	if second.calls() != 0 {
		t.Errorf("second endpoint got %d calls", second.calls())
	}
}

// TestReadsFailOver: every read RPC moves past an unavailable node.
func TestReadsFailOver(t *testing.T) {
	down := func() error { return connect.NewError(connect.CodeUnavailable, errors.New("no leader")) }
	first := (&node{name: "first", read: down}).start(t)
	second := (&node{name: "second"}).start(t)
	ctx := ctx(t)
	for name, call := range map[string]func(*client.Client) error{
		"Check":      func(c *client.Client) error { _, err := c.Check(ctx, checkReq); return err },
		"CheckBatch": func(c *client.Client) error { _, err := c.CheckBatch(ctx, &optoutv1.CheckBatchRequest{}); return err },
		"Get":        func(c *client.Client) error { _, err := c.Get(ctx, &optoutv1.GetRequest{}); return err },
		"Status": func(c *client.Client) error {
			st, err := c.Status(ctx)
			if err == nil && st.NodeId != "second" {
				t.Errorf("Status from %q", st.NodeId)
			}
			return err
		},
	} {
		before := first.calls()
		if err := call(newClient(t, []string{first.url, second.url})); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if first.calls() != before+1 {
			t.Errorf("%s did not try the first endpoint", name)
		}
	}
	if second.calls() != 4 {
		t.Errorf("second endpoint got %d calls, want 4", second.calls())
	}
}

// TestEveryEndpointFails: the error names each endpoint and keeps the code;
// with no retry budget and no deadline, each endpoint is tried once.
func TestEveryEndpointFails(t *testing.T) {
	down := func() error {
		return writeErr(connect.CodeUnavailable, optoutv1.Outcome_OUTCOME_NOT_APPLIED, "no leader")
	}
	a := (&node{name: "a", set: down, read: down}).start(t)
	b := (&node{name: "b", set: down, read: down}).start(t)
	c := newClient(t, []string{a.url, b.url}, client.WithRetryBudget(0))
	_, err := c.Set(context.Background(), setReq)
	if err == nil || connect.CodeOf(err) != connect.CodeUnavailable || client.IsOutcomeUnknown(err) {
		t.Fatalf("Set: %v", err)
	}
	for _, u := range []string{a.url, b.url} {
		if !strings.Contains(err.Error(), u) {
			t.Errorf("error %q does not name %s", err, u)
		}
	}
	if a.sets.Load() != 1 || b.sets.Load() != 1 {
		t.Errorf("sets %d %d, want each endpoint tried once", a.sets.Load(), b.sets.Load())
	}
}

func TestHelpers(t *testing.T) {
	if client.IsOutcomeUnknown(nil) {
		t.Error("IsOutcomeUnknown(nil)")
	}
	if _, ok := client.CurrentVersion(nil); ok {
		t.Error("CurrentVersion(nil) ok")
	}
	if _, ok := client.CurrentVersion(errors.New("x")); ok {
		t.Error("CurrentVersion of a plain error ok")
	}
	if _, ok := client.CurrentVersion(connect.NewError(connect.CodeFailedPrecondition, nil)); ok {
		t.Error("CurrentVersion without a detail ok")
	}
	if !client.IsOutcomeUnknown(errors.New("transport")) {
		t.Error("a plain transport error must be an unknown outcome")
	}
	na := writeErr(connect.CodeUnavailable, optoutv1.Outcome_OUTCOME_NOT_APPLIED, "x")
	if client.IsOutcomeUnknown(na) || client.Outcome(na) != optoutv1.Outcome_OUTCOME_NOT_APPLIED {
		t.Errorf("NOT_APPLIED read as %v", client.Outcome(na))
	}
	// Details survive wrapping.
	if client.Outcome(errors.Join(errors.New("ctx"), na)) != optoutv1.Outcome_OUTCOME_NOT_APPLIED {
		t.Error("Outcome lost through errors.Join")
	}
}

// TestProtocols: the client works with every wire the server speaks.
func TestProtocols(t *testing.T) {
	n := (&node{name: "n"}).start(t)
	for name, o := range map[string][]connect.ClientOption{
		"connect": nil, "json": {connect.WithProtoJSON()}, "grpc": {connect.WithGRPC()}, "grpc-web": {connect.WithGRPCWeb()},
	} {
		opts := []client.Option{client.WithConnectOptions(o...)}
		if name == "grpc" {
			opts = append(opts, client.WithH2C()) // gRPC needs HTTP/2
		}
		c := newClient(t, []string{n.url}, opts...)
		if _, err := c.Set(ctx(t), setReq); err != nil {
			t.Errorf("%s: Set: %v", name, err)
		}
		if _, err := c.Check(ctx(t), checkReq); err != nil {
			t.Errorf("%s: Check: %v", name, err)
		}
	}
}

// TestEraseIsAWrite: the other write RPCs follow the same failover rule.
func TestEraseIsAWrite(t *testing.T) {
	first := (&node{name: "first", set: func() error {
		return writeErr(connect.CodeUnknown, optoutv1.Outcome_OUTCOME_UNKNOWN, "the write may have been applied")
	}}).start(t)
	second := (&node{name: "second"}).start(t)
	_, err := newClient(t, []string{first.url, second.url}).EraseSubject(ctx(t), &optoutv1.EraseSubjectRequest{SubjectId: "u1"})
	if !client.IsOutcomeUnknown(err) || second.calls() != 0 {
		t.Errorf("erase with an unknown outcome: %v; second endpoint got %d calls", err, second.calls())
	}
	_, err = newClient(t, []string{refused(t), second.url}).EraseSubject(ctx(t), &optoutv1.EraseSubjectRequest{SubjectId: "u1"})
	if err != nil || second.sets.Load() != 1 {
		t.Errorf("erase past a refused endpoint: %v; second endpoint got %d", err, second.sets.Load())
	}
}

// TestSchemaVersionHeader: every request says which schema the client
// speaks, so a cluster can refuse clients that are too old.
func TestSchemaVersionHeader(t *testing.T) {
	n := (&node{name: "n"}).start(t)
	if _, err := newClient(t, []string{n.url}).Check(ctx(t), checkReq); err != nil {
		t.Fatal(err)
	}
	if got, _ := n.schema.Load().(string); got != strconv.FormatUint(uint64(optoutd.SchemaVersion), 10) {
		t.Errorf("Optout-Schema-Version = %q, want %d", got, optoutd.SchemaVersion)
	}
}

// TestRetriesBackOffUntilTheDeadline: when every endpoint says "not now",
// the client goes round again after a jittered backoff, and succeeds once
// a node recovers; with nothing recovering, it gives up at the deadline.
func TestRetriesBackOffUntilTheDeadline(t *testing.T) {
	var fails atomic.Int64
	flaky := func() error {
		if fails.Add(1) <= 5 {
			return connect.NewError(connect.CodeUnavailable, errors.New("no leader"))
		}
		return nil
	}
	a := (&node{name: "a", read: flaky}).start(t)
	b := (&node{name: "b", read: flaky}).start(t)
	c := newClient(t, []string{a.url, b.url})
	if _, err := c.Check(ctx(t), checkReq); err != nil {
		t.Fatalf("Check after the nodes recovered: %v", err)
	}
	if n := a.reads.Load() + b.reads.Load(); n != 6 {
		t.Fatalf("%d reads, want 6 (5 refused, then one answered)", n)
	}
	down := (&node{name: "down", read: func() error { return connect.NewError(connect.CodeUnavailable, errors.New("no leader")) }}).start(t)
	c2 := newClient(t, []string{down.url})
	dctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c2.Check(dctx, checkReq)
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("Check against a node that never recovers: %v, want unavailable", err)
	}
	if down.reads.Load() < 2 {
		t.Fatalf("tried %d times within the deadline, want several", down.reads.Load())
	}
}

// TestRetryAfterAnUnknownOutcomeStaysUnknown: a Set whose first attempt may
// have applied (the node's deadline passed while it was in flight) is
// retried with its key; when the retries are refused before they reach the
// log (by a node that was removed from the cluster meanwhile, or with a
// version mismatch that the first attempt may itself have caused), the call
// still reports the first attempt's unknown outcome, never "not applied".
// The chaos suite found this: a harness client recorded such a write as
// not applied, and its value was then read. The last case shows that a run
// of certain refusals stays certain.
func TestRetryAfterAnUnknownOutcomeStaysUnknown(t *testing.T) {
	unknown := writeErr(connect.CodeUnknown, optoutv1.Outcome_OUTCOME_UNKNOWN, "deadline passed while the write was in flight; it may have been applied")
	removed := writeErr(connect.CodeFailedPrecondition, optoutv1.Outcome_OUTCOME_NOT_APPLIED, "this node (n5) was removed from the cluster")
	var rce *connect.Error
	if errors.As(removed, &rce) {
		rce.Meta().Set(wire.HeaderNodeRemoved, "true")
	}
	mismatch := writeErr(connect.CodeFailedPrecondition, optoutv1.Outcome_OUTCOME_NOT_APPLIED, "expected version 3, current version 4")
	noLeader := writeErr(connect.CodeUnavailable, optoutv1.Outcome_OUTCOME_NOT_APPLIED, "no leader; write not applied")
	for _, tc := range []struct {
		name string
		errs []error // the node's answers in turn; the last one repeats
		want optoutv1.Outcome
		code connect.Code
	}{
		{"unknown, then a removed node", []error{unknown, removed}, optoutv1.Outcome_OUTCOME_UNKNOWN, connect.CodeUnknown},
		{"unknown, then a mismatch", []error{unknown, mismatch}, optoutv1.Outcome_OUTCOME_UNKNOWN, connect.CodeUnknown},
		{"no leader, then a removed node", []error{noLeader, removed}, optoutv1.Outcome_OUTCOME_NOT_APPLIED, connect.CodeFailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			only := (&node{name: "only", set: func() error {
				return tc.errs[min(int(n.Add(1))-1, len(tc.errs)-1)]
			}}).start(t)
			c := newClient(t, []string{only.url}, client.WithRetryBudget(300*time.Millisecond))
			_, err := c.Set(ctx(t), setReq)
			if err == nil {
				t.Fatal("Set succeeded")
			}
			if only.sets.Load() < 2 {
				t.Fatalf("the node saw %d sets; want a retry", only.sets.Load())
			}
			if got := client.Outcome(err); got != tc.want {
				t.Errorf("Outcome = %v, want %v, for %v", got, tc.want, err)
			}
			if got := connect.CodeOf(err); got != tc.code {
				t.Errorf("code = %v, want %v, for %v", got, tc.code, err)
			}
			if tc.want == optoutv1.Outcome_OUTCOME_UNKNOWN {
				if _, ok := client.CurrentVersion(err); ok {
					t.Errorf("a version mismatch was reported after an unknown outcome: %v", err)
				}
				if !strings.Contains(err.Error(), "may have been applied") || !strings.Contains(err.Error(), tc.errs[1].Error()) {
					t.Errorf("the message does not name both attempts: %v", err)
				}
			}
		})
	}
}

// TestWritesGoToTheHintedLeader: once an answer names the leader's address
// (Optout-Leader) and it is one of the endpoints, writes start there while
// reads stay where they were; a hint naming no endpoint changes nothing;
// when the hinted leader fails, the write moves on as before.
func TestWritesGoToTheHintedLeader(t *testing.T) {
	a := (&node{name: "a"}).start(t)
	b := (&node{name: "b"}).start(t)
	hostB := strings.TrimPrefix(b.url, "http://")
	a.leader.Store(&hostB)
	b.leader.Store(&hostB)
	c := newClient(t, []string{a.url, b.url})
	ctx := ctx(t)
	if _, err := c.Check(ctx, checkReq); err != nil {
		t.Fatal(err)
	}
	if got := c.LeaderEndpoint(); got != b.url {
		t.Fatalf("LeaderEndpoint = %q after a hint naming %s, want %q", got, hostB, b.url)
	}
	for range 3 {
		if _, err := c.Set(ctx, setReq); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Check(ctx, checkReq); err != nil {
		t.Fatal(err)
	}
	if a.sets.Load() != 0 || b.sets.Load() != 3 || a.reads.Load() != 2 || b.reads.Load() != 0 {
		t.Fatalf("sets a=%d b=%d, reads a=%d b=%d; want writes on b (the leader), reads on a",
			a.sets.Load(), b.sets.Load(), a.reads.Load(), b.reads.Load())
	}

	b.set = func() error {
		return writeErr(connect.CodeUnavailable, optoutv1.Outcome_OUTCOME_NOT_APPLIED, "no leader; write not applied")
	}
	if _, err := c.Set(ctx, setReq); err != nil {
		t.Fatalf("Set with the hinted leader failing: %v", err)
	}
	if a.sets.Load() != 1 {
		t.Fatalf("the write did not move on from the failing leader: a has %d sets", a.sets.Load())
	}

	elsewhere := "10.9.9.9:7001"
	b.leader.Store(&elsewhere)
	a.leader.Store(&elsewhere)
	b.set = nil
	if _, err := c.Check(ctx, checkReq); err != nil {
		t.Fatal(err)
	}
	if got := c.LeaderEndpoint(); got != "" {
		t.Fatalf("LeaderEndpoint = %q after a hint naming no endpoint", got)
	}
}

// TestUnknownThenRefusedDialStaysUnknown is the chaos CI tier's kill run:
// a Set reached the node, which died before answering (the client read
// "unexpected EOF"), and every retry then found the port closed. The first
// attempt may have been applied (there it was), so the call must be
// reported OUTCOME_UNKNOWN. Outcome used to find the retries' dial error
// inside the summary before its own WriteOutcome detail, and said
// NOT_APPLIED.
func TestUnknownThenRefusedDialStaysUnknown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	got := make(chan struct{})
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		// Read the request, then die: close the connection and the port.
		buf := make([]byte, 4096)
		_, _ = conn.Read(buf)
		_ = ln.Close()
		_ = conn.Close()
		close(got)
	}()
	t.Cleanup(func() { _ = ln.Close() })
	c := newClient(t, []string{addr}, client.WithRetryBudget(300*time.Millisecond))
	_, err = c.Set(ctx(t), setReq)
	<-got
	if err == nil {
		t.Fatal("Set succeeded against a node that died")
	}
	if o := client.Outcome(err); o != optoutv1.Outcome_OUTCOME_UNKNOWN {
		t.Fatalf("Outcome = %v, want OUTCOME_UNKNOWN (the first attempt reached the node), for %v", o, err)
	}
	if !strings.Contains(err.Error(), "may have been applied") {
		t.Errorf("the message does not say the write may have been applied: %v", err)
	}
}
