package api_test

import (
	"context"
	"crypto/sha256"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/optoutd/optoutd/api/wire"
	"github.com/optoutd/optoutd/cluster/clustertest"
	"github.com/optoutd/optoutd/store"
	"github.com/prometheus/client_golang/prometheus"
)

// noRecordsView fails every record read: ReadIndex must read none.
type noRecordsView struct {
	memView
	minSchema uint32
}

var errRecordRead = optoutd.Errorf(optoutd.Internal, "test: ReadIndex read a record")

func (v noRecordsView) Check(optoutd.Key) (optoutd.CheckResult, error) {
	return optoutd.CheckResult{}, errRecordRead
}

func (v noRecordsView) Get(optoutd.Key) (optoutd.Record, bool, error) {
	return optoutd.Record{}, false, errRecordRead
}

func (v noRecordsView) Settings() (optoutd.Settings, error) {
	return optoutd.Settings{Initialized: true, CatalogVersion: catalogVersion, MinSchemaVersion: v.minSchema}, nil
}

// TestReadIndexIsAReadThatReadsNothing: ReadIndex answers with the read
// index and catalog version of one linearizable read (Store.Read), reads
// no record, applies the schema gate, maps the store's refusal like any
// read, and is counted in the RPC metrics.
func TestReadIndexIsAReadThatReadsNothing(t *testing.T) {
	const idx = 57
	for _, tc := range []struct {
		name      string
		minSchema uint32
		readErr   error
		want      connect.Code // 0: success
	}{
		{name: "answers"},
		{name: "schema gate", minSchema: optoutd.SchemaVersion + 1, want: connect.CodeFailedPrecondition},
		{name: "no leader", readErr: optoutd.Errorf(optoutd.Unavailable, "no leader"), want: connect.CodeUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStore{}
			st.ReadFn = func(_ context.Context, fn func(optoutd.View) error) (uint64, error) {
				if tc.readErr != nil {
					return 0, tc.readErr
				}
				return idx, fn(noRecordsView{memView: memView{applied: idx}, minSchema: tc.minSchema})
			}
			reg := prometheus.NewRegistry()
			s := serve(t, st, api.Options{Registerer: reg})
			c := optoutv1connect.NewOptOutServiceClient(http1Client(t), s.URL)
			req := connect.NewRequest(&optoutv1.ReadIndexRequest{})
			req.Header().Set(wire.HeaderSchemaVersion, strconv.Itoa(int(optoutd.SchemaVersion)))
			r, err := c.ReadIndex(ctx(t), req)
			if got := st.readCalls.Load(); got != 1 || st.calls() != 1 {
				t.Errorf("ReadIndex made %d linearizable reads and %d store calls, want 1 and 1", got, st.calls())
			}
			code := "ok"
			if tc.want != 0 {
				_ = wireError(t, err, tc.want)
				code = tc.want.String()
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if r.Msg.ReadIndex != idx || r.Msg.CatalogVersion != catalogVersion || r.Header().Get(wire.HeaderCatalogVersion) != u64(catalogVersion) {
					t.Errorf("ReadIndex = %v (catalog header %q), want read index %d and catalog %d", r.Msg, r.Header().Get(wire.HeaderCatalogVersion), idx, catalogVersion)
				}
			}
			if n := counted(t, reg, optoutv1connect.OptOutServiceReadIndexProcedure, code); n != 1 {
				t.Errorf("optoutd_rpc_requests_total{procedure=ReadIndex,code=%s} = %v, want 1", code, n)
			}
		})
	}
}

// counted returns optoutd_rpc_requests_total for one procedure and code.
func counted(t *testing.T, g prometheus.Gatherer, procedure, code string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "optoutd_rpc_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["procedure"] == procedure && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// tokenPrincipals knows one token, of the given role.
type tokenPrincipals struct {
	token string
	role  optoutd.Role
}

func (p tokenPrincipals) LookupToken(sum []byte) (optoutd.Principal, bool, error) {
	want := sha256.Sum256([]byte(p.token))
	if string(sum) != string(want[:]) {
		return optoutd.Principal{}, false, nil
	}
	return optoutd.Principal{Name: "svc", Kind: optoutd.PrincipalToken, Role: p.role}, true, nil
}

func (tokenPrincipals) LookupName(string) (optoutd.Principal, bool, error) {
	return optoutd.Principal{}, false, nil
}
func (tokenPrincipals) Sync(context.Context) error                                  { return nil }
func (tokenPrincipals) ListPrincipals(context.Context) ([]optoutd.Principal, error) { return nil, nil }
func (tokenPrincipals) PutPrincipal(context.Context, optoutd.Principal, bool, uint32, string) error {
	return nil
}
func (tokenPrincipals) DeletePrincipal(context.Context, string, uint32, string) error { return nil }

// TestReadIndexNeedsTheReaderRole: a cache runs with the credentials its
// Checks use, so every role that may Check may ask for a read index.
func TestReadIndexNeedsTheReaderRole(t *testing.T) {
	st := memStore()
	s := serve(t, st, api.Options{Principals: tokenPrincipals{token: "t0ken", role: optoutd.RoleReader}, RequireAuth: true})
	c := optoutv1connect.NewOptOutServiceClient(http1Client(t), s.URL)
	req := connect.NewRequest(&optoutv1.ReadIndexRequest{})
	req.Header().Set("Authorization", "Bearer t0ken")
	if r, err := c.ReadIndex(ctx(t), req); err != nil || r.Msg.ReadIndex != firstIndex {
		t.Fatalf("ReadIndex as a reader = %v, %v; want read index %d", r, err, firstIndex)
	}
	_, err := c.ReadIndex(ctx(t), connect.NewRequest(&optoutv1.ReadIndexRequest{}))
	_ = wireError(t, err, connect.CodeUnauthenticated)
}

// TestReadIndexOnARealCluster: on every node, a follower's included, the
// read index covers a write acknowledged before the call, and the catalog
// version is the one the write saw.
func TestReadIndexOnARealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(30 * time.Second)
	apis := map[string]optoutv1connect.OptOutServiceClient{}
	for _, n := range c.Nodes() {
		s := serve(t, store.New(n), api.Options{})
		apis[n.ID()] = optoutv1connect.NewOptOutServiceClient(http1Client(t), s.URL)
	}
	ctx := ctx(t)
	for i := range 5 {
		set, err := apis[leader.ID()].Set(ctx, connect.NewRequest(&optoutv1.SetRequest{
			SubjectId: "u" + strconv.Itoa(i), Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT,
		}))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range c.IDs() {
			r, err := apis[id].ReadIndex(ctx, connect.NewRequest(&optoutv1.ReadIndexRequest{}))
			if err != nil {
				t.Fatalf("ReadIndex on %s: %v", id, err)
			}
			if r.Msg.ReadIndex < set.Msg.Version || r.Msg.CatalogVersion != set.Msg.CatalogVersion {
				t.Fatalf("ReadIndex on %s = %v after a write at version %d (catalog %d)", id, r.Msg, set.Msg.Version, set.Msg.CatalogVersion)
			}
		}
	}
}
