package api_test

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

// fakeStore is an api.Store made of func fields. Each method counts its
// calls; a nil func fails the call with an Internal error so that a test
// that reaches an unexpected method notices.
type fakeStore struct {
	SetFn            func(context.Context, optoutd.SetRequest) (optoutd.SetResult, error)
	ReadFn           func(context.Context, func(optoutd.View) error) (uint64, error)
	ReadLocalFn      func(func(optoutd.View) error) error
	WaitAppliedFn    func(context.Context, uint64) error // nil: wait until ctx ends
	DefinePurposeFn  func(context.Context, optoutd.Purpose, *uint64) (optoutd.Purpose, uint64, error)
	UpdateSettingsFn func(context.Context, *uint32, *time.Duration) (optoutd.Settings, error)
	EraseSubjectFn   func(ctx context.Context, subject, reason string) (uint64, uint32, error)
	StatusFn         func(context.Context) (optoutd.ClusterStatus, error)
	StateDigestFn    func(context.Context) (optoutd.StateDigest, error)
	ReadyFn          func() error
	RotateKeyFn      func(ctx context.Context, seed []byte, onlyIfNone bool) (uint32, error)
	SetBatchFn       func(context.Context, optoutd.SetBatchRequest) (optoutd.SetBatchResult, error)

	setCalls, readCalls, statusCalls, digestCalls, otherCalls atomic.Int64
}

var _ api.Store = (*fakeStore)(nil)

var errNoFake = optoutd.Errorf(optoutd.Internal, "fake: method not set")

func (s *fakeStore) Set(ctx context.Context, req optoutd.SetRequest) (optoutd.SetResult, error) {
	s.setCalls.Add(1)
	if s.SetFn == nil {
		return optoutd.SetResult{}, errNoFake
	}
	return s.SetFn(ctx, req)
}

func (s *fakeStore) SetBatch(ctx context.Context, req optoutd.SetBatchRequest) (optoutd.SetBatchResult, error) {
	s.setCalls.Add(1)
	if s.SetBatchFn == nil {
		return optoutd.SetBatchResult{}, errNoFake
	}
	return s.SetBatchFn(ctx, req)
}

func (s *fakeStore) Read(ctx context.Context, fn func(optoutd.View) error) (uint64, error) {
	s.readCalls.Add(1)
	if s.ReadFn == nil {
		return 0, errNoFake
	}
	return s.ReadFn(ctx, fn)
}

func (s *fakeStore) RotateReceiptKey(ctx context.Context, seed []byte, onlyIfNone bool, _ uint32, _ string) (uint32, error) {
	s.otherCalls.Add(1)
	if s.RotateKeyFn == nil {
		return 0, errNoFake
	}
	return s.RotateKeyFn(ctx, seed, onlyIfNone)
}

func (s *fakeStore) CreateOverride(context.Context, optoutd.Override, uint32, string) (optoutd.Override, error) {
	s.otherCalls.Add(1)
	return optoutd.Override{}, errNoFake
}

func (s *fakeStore) EndOverride(context.Context, uint64, bool, string, uint32, string) (optoutd.Override, error) {
	s.otherCalls.Add(1)
	return optoutd.Override{}, errNoFake
}

func (s *fakeStore) SetMaxOverride(context.Context, time.Duration, uint32, string) (optoutd.Settings, error) {
	s.otherCalls.Add(1)
	return optoutd.Settings{}, errNoFake
}

func (s *fakeStore) RecordReports(context.Context, optoutd.ReportBatch, uint32, string) (uint64, error) {
	s.otherCalls.Add(1)
	return 0, errNoFake
}

func (s *fakeStore) ReadLocal(fn func(optoutd.View) error) error {
	s.otherCalls.Add(1)
	if s.ReadLocalFn == nil {
		return errNoFake
	}
	return s.ReadLocalFn(fn)
}

func (s *fakeStore) WaitApplied(ctx context.Context, index uint64) error {
	s.otherCalls.Add(1)
	if s.WaitAppliedFn != nil {
		return s.WaitAppliedFn(ctx, index)
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *fakeStore) DefinePurpose(ctx context.Context, p optoutd.Purpose, expected *uint64, _ uint32, _ string) (optoutd.Purpose, uint64, error) {
	s.otherCalls.Add(1)
	if s.DefinePurposeFn == nil {
		return optoutd.Purpose{}, 0, errNoFake
	}
	return s.DefinePurposeFn(ctx, p, expected)
}

func (s *fakeStore) UpdateSettings(ctx context.Context, minSchema *uint32, retention *time.Duration, _ uint32, _ string) (optoutd.Settings, error) {
	s.otherCalls.Add(1)
	if s.UpdateSettingsFn == nil {
		return optoutd.Settings{}, errNoFake
	}
	return s.UpdateSettingsFn(ctx, minSchema, retention)
}

func (s *fakeStore) EraseSubject(ctx context.Context, subject, reason string, _ uint32, _ string) (uint64, uint32, error) {
	s.otherCalls.Add(1)
	if s.EraseSubjectFn == nil {
		return 0, 0, errNoFake
	}
	return s.EraseSubjectFn(ctx, subject, reason)
}

func (s *fakeStore) Status(ctx context.Context) (optoutd.ClusterStatus, error) {
	s.statusCalls.Add(1)
	if s.StatusFn == nil {
		return optoutd.ClusterStatus{}, errNoFake
	}
	return s.StatusFn(ctx)
}

func (s *fakeStore) StateDigest(ctx context.Context) (optoutd.StateDigest, error) {
	s.digestCalls.Add(1)
	if s.StateDigestFn == nil {
		return optoutd.StateDigest{}, errNoFake
	}
	return s.StateDigestFn(ctx)
}

func (s *fakeStore) Ready() error {
	if s.ReadyFn == nil {
		return nil
	}
	return s.ReadyFn()
}

// calls counts every call that could read or change state.
func (s *fakeStore) calls() int64 {
	return s.setCalls.Load() + s.readCalls.Load() + s.statusCalls.Load() + s.digestCalls.Load() + s.otherCalls.Load()
}

// catalogVersion is the catalog version of every memView.
const catalogVersion = 7

// testCatalog is memView's purpose catalog: one purpose of each model.
var testCatalog = map[string]optoutd.Purpose{
	"email_marketing": {Name: "email_marketing", Default: optoutd.DefaultAllow, Version: 3},
	"sms_marketing":   {Name: "sms_marketing", Default: optoutd.DefaultDeny, Version: 4},
}

// memView is an optoutd.View over a map. It decides with the real rule,
// optoutd.Decide; audit history is not modelled.
type memView struct {
	applied uint64
	recs    map[optoutd.Key]optoutd.Record
}

var errNoHistory = optoutd.Errorf(optoutd.Internal, "fake: no audit history")

func (v memView) AppliedIndex() uint64 { return v.applied }

func (v memView) Get(k optoutd.Key) (optoutd.Record, bool, error) {
	r, ok := v.recs[k]
	if !ok {
		return optoutd.Record{Key: k}, false, nil
	}
	return r, true, nil
}

func (v memView) Check(k optoutd.Key) (optoutd.CheckResult, error) {
	p, err := v.Purpose(k.Purpose)
	if err != nil {
		return optoutd.CheckResult{}, err
	}
	all, _, _ := v.Get(optoutd.Key{SubjectID: k.SubjectID, Purpose: optoutd.AllPurposes})
	rec, _, _ := v.Get(k)
	return optoutd.Decide(p, all, false, rec), nil
}

func (v memView) Settings() (optoutd.Settings, error) {
	return optoutd.Settings{Initialized: true, CatalogVersion: catalogVersion}, nil
}

func (v memView) Purpose(name string) (optoutd.Purpose, error) {
	p, ok := testCatalog[name]
	if !ok {
		return p, optoutd.Errorf(optoutd.NotFound, "purpose %q is not defined", name)
	}
	return p, nil
}

func (v memView) Purposes() ([]optoutd.Purpose, error) {
	return []optoutd.Purpose{testCatalog["email_marketing"], testCatalog["sms_marketing"]}, nil
}

func (v memView) History(string, string, uint64, int) ([]optoutd.AuditEntry, error) {
	return nil, errNoHistory
}

func (v memView) StateAt(optoutd.Key, uint64) (optoutd.StateAtResult, error) {
	return optoutd.StateAtResult{}, errNoHistory
}

func (v memView) Changes(uint64, int) ([]optoutd.AuditEntry, error) { return nil, errNoHistory }

// Records pages through recs in (subject, purpose) order.
func (v memView) Records(after optoutd.Key, purpose string, limit int) ([]optoutd.Record, optoutd.Key, error) {
	keys := make([]optoutd.Key, 0, len(v.recs))
	for k := range v.recs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b optoutd.Key) int {
		return cmp.Or(cmp.Compare(a.SubjectID, b.SubjectID), cmp.Compare(a.Purpose, b.Purpose))
	})
	var out []optoutd.Record
	for i, k := range keys {
		if after != (optoutd.Key{}) && cmp.Or(cmp.Compare(k.SubjectID, after.SubjectID), cmp.Compare(k.Purpose, after.Purpose)) <= 0 {
			continue
		}
		if purpose == "" || k.Purpose == purpose {
			out = append(out, v.recs[k])
		}
		if len(out) == limit && i < len(keys)-1 {
			return out, k, nil
		}
	}
	return out, optoutd.Key{}, nil
}

func (v memView) VerifyAudit() (optoutd.AuditReport, error) {
	return optoutd.AuditReport{}, errNoHistory
}

// memView has no receipt keys: receipts are tested against real clusters.
func (v memView) ReceiptKeys() ([]optoutd.ReceiptKey, error) { return nil, nil }

func (v memView) ReceiptKey(uint32) (optoutd.ReceiptKey, bool, error) {
	return optoutd.ReceiptKey{}, false, nil
}

func (v memView) CurrentReceiptKey() (optoutd.ReceiptKey, bool, error) {
	return optoutd.ReceiptKey{}, false, nil
}

func (v memView) ReceiptSubjectHash(string) []byte {
	return make([]byte, optoutd.ReceiptSubjectHashBytes)
}

// memView has no overrides: they are tested against real clusters.
func (v memView) Overrides(optoutd.Key) ([]optoutd.Override, error) { return nil, nil }

func (v memView) ListOverrides(bool, string, int) ([]optoutd.Override, error) { return nil, nil }

// memView has no reports either.
func (v memView) ListViolations(string, string, []byte, uint64, int) ([]optoutd.Violation, error) {
	return nil, nil
}

func (v memView) ServiceScores(string, time.Time, time.Time) ([]optoutd.ServiceScore, error) {
	return nil, nil
}

func (v memView) Override(id uint64) (optoutd.Override, error) {
	return optoutd.Override{}, optoutd.Errorf(optoutd.NotFound, "override %d does not exist", id)
}

// firstIndex is where memStore's log starts, so versions and read indexes
// are distinctive numbers rather than 1.
const firstIndex = 40

// fixedTime is the UpdatedAt of every record memStore writes.
var fixedTime = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// memStore returns a fakeStore backed by a map that follows the real
// store's rules: every write takes the next log index as its version; the
// purpose must be in the catalog; a compare-and-set conflict reports the
// current version; an opt-in replaces an opt-out only with
// expected_version (deny wins).
func memStore() *fakeStore {
	var (
		mu    sync.Mutex
		index uint64 = firstIndex
		recs         = map[optoutd.Key]optoutd.Record{}
	)
	view := func() memView { return memView{applied: index, recs: recs} }
	s := &fakeStore{}
	s.SetFn = func(_ context.Context, req optoutd.SetRequest) (optoutd.SetResult, error) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := view().Purpose(req.Purpose); err != nil && req.Purpose != optoutd.AllPurposes {
			return optoutd.SetResult{}, err
		}
		cur := recs[req.Key]
		mismatch := func(msg string) (optoutd.SetResult, error) {
			return optoutd.SetResult{}, &optoutd.Error{Code: optoutd.VersionMismatch, Message: msg, CurrentVersion: cur.Version}
		}
		if ev := req.ExpectedVersion; ev != nil && *ev != cur.Version {
			return mismatch("expected version " + u64(*ev) + ", current version " + u64(cur.Version))
		}
		if cur.State == optoutd.StateOptedOut && req.State == optoutd.StateOptedIn && req.ExpectedVersion == nil {
			return mismatch("re-consent needs expectedVersion: the subject opted out at current version " + u64(cur.Version))
		}
		index++
		r := optoutd.Record{Key: req.Key, State: req.State, Version: index, UpdatedAt: fixedTime, Source: req.Source, Reason: req.Reason}
		recs[req.Key] = r
		return optoutd.SetResult{Record: r, CatalogVersion: catalogVersion}, nil
	}
	s.ReadFn = func(_ context.Context, fn func(optoutd.View) error) (uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		return index, fn(view())
	}
	s.StatusFn = func(context.Context) (optoutd.ClusterStatus, error) {
		mu.Lock()
		defer mu.Unlock()
		return testStatus(index), nil
	}
	s.StateDigestFn = func(context.Context) (optoutd.StateDigest, error) {
		mu.Lock()
		defer mu.Unlock()
		return optoutd.StateDigest{NodeID: "n1", AppliedIndex: index, SHA256: [32]byte{0xab, 0xcd}, Records: uint64(len(recs))}, nil
	}
	return s
}

func testStatus(index uint64) optoutd.ClusterStatus {
	return optoutd.ClusterStatus{
		NodeID: "n1", LeaderID: "n2", Term: 3, CommitIndex: index, AppliedIndex: index, RaftState: "Follower",
		Nodes: []optoutd.NodeStatus{
			{ID: "n1", RaftAddress: "127.0.0.1:7101", APIAddress: "127.0.0.1:7001", Voter: true},
			{ID: "n2", RaftAddress: "127.0.0.1:7102", APIAddress: "127.0.0.1:7002", Voter: true, Leader: true},
			{ID: "n3", RaftAddress: "127.0.0.1:7103", APIAddress: "", Voter: false},
		},
	}
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// seen records what the last request looked like on the server side, so
// tests can check that a protocol really went over the wire it claims.
type seen struct {
	mu          sync.Mutex
	protoMajor  int
	method      string
	contentType string
}

func (s *seen) last() (protoMajor int, method, contentType string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.protoMajor, s.method, s.contentType
}

// server serves api.NewHandler(store) over HTTP/1.1 and h2c.
type server struct {
	*httptest.Server
	seen *seen
}

func serve(t testing.TB, store api.Store, opts api.Options) *server {
	t.Helper()
	h := api.NewHandler(store, opts)
	sn := &seen{}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sn.mu.Lock()
		sn.protoMajor, sn.method, sn.contentType = r.ProtoMajor, r.Method, r.Header.Get("Content-Type")
		sn.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	ts.Config.Protocols = &p
	ts.Start()
	t.Cleanup(ts.Close)
	return &server{Server: ts, seen: sn}
}

// http1Client speaks only HTTP/1.1; h2cClient speaks only HTTP/2 without
// TLS (prior knowledge).
func http1Client(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func h2cClient(t testing.TB) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// protocol is one way of calling the API with the generated clients.
type protocol struct {
	name        string
	h2c         bool
	opts        []connect.ClientOption
	contentType string // prefix the server must see
}

func protocols() []protocol {
	return []protocol{
		{name: "connect+proto/h2c", h2c: true, contentType: "application/proto"},
		{name: "connect+json/h2c", h2c: true, opts: []connect.ClientOption{connect.WithProtoJSON()}, contentType: "application/json"},
		{name: "grpc/h2c", h2c: true, opts: []connect.ClientOption{connect.WithGRPC()}, contentType: "application/grpc"},
		{name: "grpc-web/h2c", h2c: true, opts: []connect.ClientOption{connect.WithGRPCWeb()}, contentType: "application/grpc-web"},
		{name: "connect+proto/http1", contentType: "application/proto"},
		{name: "connect+json/http1", opts: []connect.ClientOption{connect.WithProtoJSON()}, contentType: "application/json"},
		{name: "grpc-web/http1", opts: []connect.ClientOption{connect.WithGRPCWeb()}, contentType: "application/grpc-web"},
	}
}

func (p protocol) httpClient(t testing.TB) *http.Client {
	if p.h2c {
		return h2cClient(t)
	}
	return http1Client(t)
}

type clients struct {
	optout  optoutv1connect.OptOutServiceClient
	cluster optoutv1connect.ClusterServiceClient
}

func (p protocol) clients(t testing.TB, s *server) clients {
	hc := p.httpClient(t)
	return clients{
		optout:  optoutv1connect.NewOptOutServiceClient(hc, s.URL, p.opts...),
		cluster: optoutv1connect.NewClusterServiceClient(hc, s.URL, p.opts...),
	}
}

// checkWire fails unless the last request used p's wire format and HTTP
// version.
func (p protocol) checkWire(t testing.TB, s *server) {
	t.Helper()
	major, _, ct := s.seen.last()
	wantMajor := 1
	if p.h2c {
		wantMajor = 2
	}
	if major != wantMajor {
		t.Errorf("%s: request went over HTTP/%d, want HTTP/%d", p.name, major, wantMajor)
	}
	if !strings.HasPrefix(ct, p.contentType) {
		t.Errorf("%s: Content-Type %q, want prefix %q", p.name, ct, p.contentType)
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// wireError asserts err is a *connect.Error with the given code and returns
// it.
func wireError(t testing.TB, err error, want connect.Code) *connect.Error {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *connect.Error", err, err)
	}
	if ce.Code() != want {
		t.Fatalf("code %v (message %q), want %v", ce.Code(), ce.Message(), want)
	}
	return ce
}

// details decodes the error details that optoutd defines.
func details(t testing.TB, ce *connect.Error) (vm *optoutv1.VersionMismatch, wo *optoutv1.WriteOutcome) {
	t.Helper()
	for _, d := range ce.Details() {
		m, err := d.Value()
		if err != nil {
			t.Fatalf("detail %s: %v", d.Type(), err)
		}
		switch m := m.(type) {
		case *optoutv1.VersionMismatch:
			if vm != nil {
				t.Errorf("two VersionMismatch details")
			}
			vm = m
		case *optoutv1.WriteOutcome:
			if wo != nil {
				t.Errorf("two WriteOutcome details")
			}
			wo = m
		default:
			t.Errorf("unexpected detail %s", d.Type())
		}
	}
	return vm, wo
}
