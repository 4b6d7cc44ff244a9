package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

// fakeCluster is one in-memory node with the calls a Cache makes: Check,
// ReadIndex and Watch over a log of changes. Every change takes the next
// index; a catalog change takes one too but is no audit change, as in the
// real state machine. Check decides deny-wins over "all".
type fakeCluster struct {
	optoutv1connect.UnimplementedOptOutServiceHandler
	url string

	mu       sync.Mutex
	index    uint64
	catalog  uint64
	floor    uint64 // changes at or below it are gone (retention)
	state    map[[2]string]optoutv1.State
	log      []*optoutv1.AuditEntry
	changed  chan struct{} // closed and replaced on every change
	cut      chan struct{} // closed to end every stream with unavailable
	refuse   bool          // new streams are refused
	frozen   bool          // streams send nothing more
	checks   atomic.Int64
	streams  atomic.Int64         // Watch calls
	onCheck  func(subject string) // runs once, after a Check decided, before it answers
	override uint64               // if set, every decision says an override made it
}

func newFakeCluster(t *testing.T) *fakeCluster {
	f := &fakeCluster{index: 100, catalog: 5, state: map[[2]string]optoutv1.State{},
		changed: make(chan struct{}), cut: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle(optoutv1connect.NewOptOutServiceHandler(f))
	s := httptest.NewServer(mux)
	t.Cleanup(func() {
		f.mu.Lock()
		close(f.cut)
		f.cut = make(chan struct{})
		f.mu.Unlock()
		s.Close()
	})
	f.url = s.URL
	return f
}

func (f *fakeCluster) bumpLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// set writes a record and returns its version.
func (f *fakeCluster) set(subject, purpose string, st optoutv1.State) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	f.state[[2]string{subject, purpose}] = st
	f.log = append(f.log, &optoutv1.AuditEntry{Version: f.index, Kind: optoutv1.AuditKind_AUDIT_KIND_SET, SubjectId: subject, Purpose: purpose, NewState: st})
	f.bumpLocked()
	return f.index
}

// erase removes a subject: its history loses its id, as the real one does.
func (f *fakeCluster) erase(subject string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	for k := range f.state {
		if k[0] == subject {
			delete(f.state, k)
		}
	}
	f.state[[2]string{subject, "all"}] = optoutv1.State_STATE_OPTED_OUT
	for _, e := range f.log {
		if e.SubjectId == subject {
			e.SubjectId, e.Erased = "", true
		}
	}
	f.log = append(f.log, &optoutv1.AuditEntry{Version: f.index, Kind: optoutv1.AuditKind_AUDIT_KIND_ERASE, Purpose: "all", Erased: true})
	f.bumpLocked()
	return f.index
}

// defineCatalog changes the catalog: a log entry that is no audit change.
func (f *fakeCluster) defineCatalog() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	f.catalog++
	f.bumpLocked()
	return f.index
}

// cutStreams ends every open stream; with refuse, new ones fail too.
func (f *fakeCluster) cutStreams(refuse bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuse = refuse
	close(f.cut)
	f.cut = make(chan struct{})
}

// beforeNextCheck runs fn once, inside the next Check, after it decided.
func (f *fakeCluster) beforeNextCheck(fn func(subject string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onCheck = fn
}

func (f *fakeCluster) freeze(frozen bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = frozen
	f.bumpLocked()
}

func (f *fakeCluster) decideLocked(subject, purpose string) *optoutv1.CheckResponse {
	r := &optoutv1.CheckResponse{Decision: optoutv1.Decision_DECISION_ALLOW, ReadIndex: f.index, CatalogVersion: f.catalog,
		Basis: optoutv1.Basis_BASIS_PURPOSE_DEFAULT, DecidedByPurpose: purpose}
	if f.override != 0 {
		r.Basis, r.OverrideId = optoutv1.Basis_BASIS_OVERRIDE, f.override
		return r
	}
	if f.state[[2]string{subject, "all"}] == optoutv1.State_STATE_OPTED_OUT {
		r.Decision, r.State, r.Basis, r.DecidedByPurpose = optoutv1.Decision_DECISION_DENY, optoutv1.State_STATE_OPTED_OUT, optoutv1.Basis_BASIS_ALL_RECORD, "all"
	} else if st, ok := f.state[[2]string{subject, purpose}]; ok {
		r.State, r.Basis = st, optoutv1.Basis_BASIS_PURPOSE_RECORD
		if st == optoutv1.State_STATE_OPTED_OUT {
			r.Decision = optoutv1.Decision_DECISION_DENY
		}
	}
	return r
}

func (f *fakeCluster) Check(_ context.Context, req *connect.Request[optoutv1.CheckRequest]) (*connect.Response[optoutv1.CheckResponse], error) {
	f.checks.Add(1)
	f.mu.Lock()
	r := f.decideLocked(req.Msg.SubjectId, req.Msg.Purpose)
	hook := f.onCheck
	f.onCheck = nil
	f.mu.Unlock()
	if hook != nil {
		hook(req.Msg.SubjectId)
	}
	return connect.NewResponse(r), nil
}

func (f *fakeCluster) ReadIndex(context.Context, *connect.Request[optoutv1.ReadIndexRequest]) (*connect.Response[optoutv1.ReadIndexResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return connect.NewResponse(&optoutv1.ReadIndexResponse{ReadIndex: f.index, CatalogVersion: f.catalog}), nil
}

var errCut = connect.NewError(connect.CodeUnavailable, errors.New("fake: stream cut"))

func (f *fakeCluster) Watch(ctx context.Context, req *connect.Request[optoutv1.WatchRequest], stream *connect.ServerStream[optoutv1.WatchResponse]) error {
	f.streams.Add(1)
	cursor := req.Msg.FromVersion
	f.mu.Lock()
	if f.refuse {
		f.mu.Unlock()
		return errCut
	}
	if cursor < f.floor {
		f.mu.Unlock()
		return connect.NewError(connect.CodeOutOfRange, errors.New("fake: from_version is older than the retained history"))
	}
	cut := f.cut
	f.mu.Unlock()
	for {
		f.mu.Lock()
		if cut != f.cut { // cut while this stream waited
			f.mu.Unlock()
			return errCut
		}
		var out []*optoutv1.WatchResponse
		if !f.frozen {
			for _, e := range f.log {
				if e.Version > cursor {
					out = append(out, &optoutv1.WatchResponse{Event: &optoutv1.WatchResponse_Change{Change: e}})
				}
			}
			cursor = max(cursor, f.index)
			out = append(out, &optoutv1.WatchResponse{Event: &optoutv1.WatchResponse_Progress{Progress: &optoutv1.Progress{AppliedIndex: cursor}}})
		}
		changed := f.changed
		f.mu.Unlock()
		for _, m := range out {
			if err := stream.Send(m); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-cut:
			return errCut
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
