package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/wire"
)

const secret = "10.0.0.7:7102 connection reset" // a cause that must not reach clients

type mapping struct {
	name string
	err  error
	code connect.Code
	// message, when set, must appear in the wire message.
	message string
	// current, when set, is the VersionMismatch detail expected.
	current *uint64
	// outcome is the WriteOutcome a write must carry.
	outcome optoutv1.Outcome
}

func ptr(v uint64) *uint64 { return &v }

// mappings is the contract of api/errors.go, written out independently.
func mappings() []mapping {
	const unknownMsg = "the write may have been applied"
	return []mapping{
		{"invalid", optoutd.Errorf(optoutd.Invalid, "purpose: unknown purpose"), connect.CodeInvalidArgument, "purpose: unknown purpose", nil, optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		{"not found", optoutd.Errorf(optoutd.NotFound, "purpose \"x\" is not defined"), connect.CodeNotFound, "is not defined", nil, optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		{"failed precondition", optoutd.Errorf(optoutd.FailedPrecondition, "idempotency key reused for another request"), connect.CodeFailedPrecondition, "idempotency key reused", nil, optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		{"out of range", optoutd.Errorf(optoutd.OutOfRange, "older than the retained history"), connect.CodeOutOfRange, "retained history", nil, optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		{"version mismatch", &optoutd.Error{Code: optoutd.VersionMismatch, Message: "expected version 3, current version 17", CurrentVersion: 17},
			connect.CodeFailedPrecondition, "current version 17", ptr(17), optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		{"version mismatch, record absent", &optoutd.Error{Code: optoutd.VersionMismatch, Message: "expected version 3, current version 0"},
			connect.CodeFailedPrecondition, "current version 0", ptr(0), optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		{"unavailable", optoutd.WrapError(optoutd.Unavailable, errors.New(secret), "write not applied; retrying is safe"),
			connect.CodeUnavailable, "write not applied; retrying is safe", nil, optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		{"outcome unknown", optoutd.WrapError(optoutd.OutcomeUnknown, errors.New(secret), unknownMsg),
			connect.CodeUnknown, unknownMsg, nil, optoutv1.Outcome_OUTCOME_UNKNOWN},
		// The server's own request timeout, with no client deadline: the
		// client did not ask for a deadline, so it is not told one passed.
		{"outcome unknown, server timeout", optoutd.WrapError(optoutd.OutcomeUnknown, fmt.Errorf("cluster: waiting for commit: %w", context.DeadlineExceeded), unknownMsg),
			connect.CodeUnknown, unknownMsg, nil, optoutv1.Outcome_OUTCOME_UNKNOWN},
		{"halted", optoutd.Errorf(optoutd.Halted, "state machine halted"), connect.CodeUnavailable, "state machine halted", nil, optoutv1.Outcome_OUTCOME_UNKNOWN},
		{"internal", optoutd.WrapError(optoutd.Internal, errors.New(secret), "log store failure"), connect.CodeInternal, "log store failure", nil, optoutv1.Outcome_OUTCOME_UNKNOWN},
		{"unmapped domain code", optoutd.Errorf(optoutd.Code("brand_new"), "something new"), connect.CodeInternal, "something new", nil, optoutv1.Outcome_OUTCOME_UNKNOWN},
		{"wrapped domain error", fmt.Errorf("cluster: set: %w", optoutd.Errorf(optoutd.Unavailable, "no leader")), connect.CodeUnavailable, "no leader", nil, optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		// A forwarded write whose connection to the leader broke: the
		// domain error wraps the peer RPC's own *connect.Error. The domain
		// classification must win over the inner transport error.
		{"outcome unknown wrapping a peer RPC error", optoutd.WrapError(optoutd.OutcomeUnknown, fmt.Errorf("forward to leader: %w", connect.NewError(connect.CodeUnavailable, errors.New(secret))), unknownMsg),
			connect.CodeUnknown, unknownMsg, nil, optoutv1.Outcome_OUTCOME_UNKNOWN},
		{"unavailable wrapping a peer RPC error", optoutd.WrapError(optoutd.Unavailable, connect.NewError(connect.CodeDeadlineExceeded, errors.New(secret)), "write not applied; retrying is safe"),
			connect.CodeUnavailable, "retrying is safe", nil, optoutv1.Outcome_OUTCOME_NOT_APPLIED},
		{"bare deadline", fmt.Errorf("cluster: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded, "", nil, optoutv1.Outcome_OUTCOME_UNKNOWN},
		{"bare cancel", context.Canceled, connect.CodeCanceled, "", nil, optoutv1.Outcome_OUTCOME_UNKNOWN},
		{"bare error", errors.New(secret), connect.CodeInternal, "internal error", nil, optoutv1.Outcome_OUTCOME_UNKNOWN},
	}
}

// TestWriteErrorMapping: every store error on Set becomes the right code,
// message and details in every protocol, and never an ok.
func TestWriteErrorMapping(t *testing.T) {
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			for _, m := range mappings() {
				t.Run(m.name, func(t *testing.T) {
					store := &fakeStore{SetFn: func(context.Context, optoutd.SetRequest) (optoutd.SetResult, error) {
						return optoutd.SetResult{}, m.err
					}}
					s := serve(t, store, api.Options{})
					resp, err := p.clients(t, s).optout.Set(ctx(t), connect.NewRequest(setReq(nil)))
					if err == nil {
						t.Fatalf("false ok: %v", resp.Msg)
					}
					ce := checkMapped(t, err, m)
					vm, wo := details(t, ce)
					if wo.GetOutcome() != m.outcome {
						t.Errorf("WriteOutcome %v, want %v", wo, m.outcome)
					}
					switch {
					case m.current == nil && vm != nil:
						t.Errorf("unexpected VersionMismatch %v", vm)
					case m.current != nil && (vm == nil || vm.CurrentVersion != *m.current):
						t.Errorf("VersionMismatch %v, want current %d", vm, *m.current)
					}
					if store.setCalls.Load() != 1 {
						t.Errorf("Set called %d times", store.setCalls.Load())
					}
				})
			}
		})
	}
}

// TestReadErrorMapping: the same errors from reads map to the same codes
// and never carry a WriteOutcome.
func TestReadErrorMapping(t *testing.T) {
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			for _, m := range mappings() {
				if m.current != nil {
					continue // reads never compare versions
				}
				t.Run(m.name, func(t *testing.T) {
					store := &fakeStore{
						ReadFn:        func(context.Context, func(optoutd.View) error) (uint64, error) { return 0, m.err },
						StatusFn:      func(context.Context) (optoutd.ClusterStatus, error) { return optoutd.ClusterStatus{}, m.err },
						StateDigestFn: func(context.Context) (optoutd.StateDigest, error) { return optoutd.StateDigest{}, m.err },
					}
					s := serve(t, store, api.Options{})
					c := p.clients(t, s)
					ctx := ctx(t)
					for name, call := range map[string]func() error{
						"Check": func() error {
							_, err := c.optout.Check(ctx, connect.NewRequest(&optoutv1.CheckRequest{SubjectId: "u1", Purpose: "p"}))
							return err
						},
						"CheckBatch": func() error {
							_, err := c.optout.CheckBatch(ctx, connect.NewRequest(&optoutv1.CheckBatchRequest{Checks: checks(2)}))
							return err
						},
						"Get": func() error {
							_, err := c.optout.Get(ctx, connect.NewRequest(&optoutv1.GetRequest{SubjectId: "u1", Purpose: "p"}))
							return err
						},
						"Status": func() error {
							_, err := c.cluster.Status(ctx, connect.NewRequest(&optoutv1.StatusRequest{}))
							return err
						},
						"StateDigest": func() error {
							_, err := c.cluster.StateDigest(ctx, connect.NewRequest(&optoutv1.StateDigestRequest{}))
							return err
						},
					} {
						err := call()
						if err == nil {
							t.Fatalf("%s: false ok", name)
						}
						ce := checkMapped(t, err, m)
						if vm, wo := details(t, ce); vm != nil || wo != nil {
							t.Errorf("%s: read error carries details %v %v", name, vm, wo)
						}
					}
				})
			}
		})
	}
}

// TestReadErrorFromView: an error returned inside the read (the view's
// Get failing) is reported, not swallowed into an ALLOW.
func TestReadErrorFromView(t *testing.T) {
	halted := optoutd.Errorf(optoutd.Halted, "state machine halted at index 9")
	store := &fakeStore{ReadFn: func(_ context.Context, fn func(optoutd.View) error) (uint64, error) {
		return 9, fn(failingView{err: halted})
	}}
	s := serve(t, store, api.Options{})
	c := protocols()[0].clients(t, s)
	r, err := c.optout.Check(ctx(t), connect.NewRequest(&optoutv1.CheckRequest{SubjectId: "u1", Purpose: "p"}))
	if err == nil {
		t.Fatalf("Check with a failing view answered %v", r.Msg)
	}
	_ = checkMapped(t, err, mapping{code: connect.CodeUnavailable, message: "state machine halted"})
	rb, err := c.optout.CheckBatch(ctx(t), connect.NewRequest(&optoutv1.CheckBatchRequest{Checks: checks(3)}))
	if err == nil {
		t.Fatalf("CheckBatch with a failing view answered %v", rb.Msg)
	}
	_ = checkMapped(t, err, mapping{code: connect.CodeUnavailable, message: "state machine halted"})
}

// failingView fails every record read.
type failingView struct {
	memView
	err error
}

func (v failingView) Get(k optoutd.Key) (optoutd.Record, bool, error) {
	return optoutd.Record{Key: k}, false, v.err
}

func (v failingView) Check(optoutd.Key) (optoutd.CheckResult, error) {
	return optoutd.CheckResult{}, v.err
}

func (v failingView) Records(optoutd.Key, string, int) ([]optoutd.Record, optoutd.Key, error) {
	return nil, optoutd.Key{}, v.err
}

func checkMapped(t *testing.T, err error, m mapping) *connect.Error {
	t.Helper()
	ce := wireError(t, err, m.code)
	if !strings.Contains(ce.Message(), m.message) {
		t.Errorf("message %q does not contain %q", ce.Message(), m.message)
	}
	if strings.Contains(ce.Message(), secret) {
		t.Errorf("message %q leaks the internal cause", ce.Message())
	}
	return ce
}

// TestClientDeadlineWhileInFlight: when the client's own deadline passes
// while the write is in flight, the answer is deadline_exceeded, still
// with OUTCOME_UNKNOWN. The fake store holds the write until the deadline
// the client sent (Connect-Timeout-Ms) has passed.
func TestClientDeadlineWhileInFlight(t *testing.T) {
	store := &fakeStore{SetFn: func(ctx context.Context, _ optoutd.SetRequest) (optoutd.SetResult, error) {
		<-ctx.Done()
		return optoutd.SetResult{}, optoutd.WrapError(optoutd.OutcomeUnknown, ctx.Err(), "deadline passed while the write was in flight; it may have been applied")
	}}
	s := serve(t, store, api.Options{})
	req, err := http.NewRequest(http.MethodPost, s.URL+"/optout.v1.OptOutService/Set",
		strings.NewReader(`{"subjectId":"u1","purpose":"email_marketing","state":"STATE_OPTED_OUT"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Timeout-Ms", "50")
	r := rawDo(t, http1Client(t), req)
	if r.body["code"] != "deadline_exceeded" || !strings.Contains(r.body["message"].(string), "may have been applied") {
		t.Errorf("write past the client's deadline: %d %v", r.status, r.body)
	}
	wo := &optoutv1.WriteOutcome{}
	jsonDetail(t, r.body, "optout.v1.WriteOutcome", wo)
	if wo.Outcome != optoutv1.Outcome_OUTCOME_UNKNOWN {
		t.Errorf("WriteOutcome %v, want UNKNOWN", wo)
	}
}

// removedNodeErr is what a removed node's store wraps
// (cluster.ErrNodeRemoved): an error with a NodeRemoved method.
type removedNodeErr struct{}

func (removedNodeErr) Error() string     { return "cluster: this node was removed from the cluster" }
func (removedNodeErr) NodeRemoved() bool { return true }

// TestRemovedNodeIsMarked: an error that wraps one whose NodeRemoved says
// true carries the Optout-Node-Removed header, so clients try another node;
// the same code without it does not.
func TestRemovedNodeIsMarked(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"removed":       {optoutd.WrapError(optoutd.FailedPrecondition, fmt.Errorf("read: %w", removedNodeErr{}), "this node was removed"), "true"},
		"not a removal": {optoutd.Errorf(optoutd.FailedPrecondition, "idempotency key reused"), ""},
	} {
		t.Run(name, func(t *testing.T) {
			store := &fakeStore{SetFn: func(context.Context, optoutd.SetRequest) (optoutd.SetResult, error) {
				return optoutd.SetResult{}, tc.err
			}}
			s := serve(t, store, api.Options{})
			_, err := protocols()[0].clients(t, s).optout.Set(ctx(t), connect.NewRequest(setReq(nil)))
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Code() != connect.CodeFailedPrecondition {
				t.Fatalf("Set = %v, want failed_precondition", err)
			}
			if got := ce.Meta().Get(wire.HeaderNodeRemoved); got != tc.want {
				t.Errorf("%s = %q, want %q", wire.HeaderNodeRemoved, got, tc.want)
			}
		})
	}
}
