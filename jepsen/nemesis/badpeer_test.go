package nemesis

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	peerv1 "github.com/optoutd/optoutd/cluster/gen/optout/peer/v1"
	"github.com/optoutd/optoutd/cluster/gen/optout/peer/v1/peerv1connect"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// fakePeer serves PeerService behind the protocol byte, as a node's Raft
// port does; accept says whether it (wrongly) applies every proposal.
type fakePeer struct {
	peerv1connect.UnimplementedPeerServiceHandler
	accept    bool
	proposals atomic.Int64
	removed   atomic.Int64
	raw       atomic.Int64
}

func (f *fakePeer) Propose(_ context.Context, req *connect.Request[peerv1.ProposeRequest]) (*connect.Response[peerv1.ProposeResponse], error) {
	f.proposals.Add(1)
	if !f.accept {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("refused"))
	}
	b, _ := proto.Marshal(&fsmv1.Result{Index: 7})
	return connect.NewResponse(&peerv1.ProposeResponse{Result: b}), nil
}

func (f *fakePeer) Removed(context.Context, *connect.Request[peerv1.RemovedRequest]) (*connect.Response[peerv1.RemovedResponse], error) {
	f.removed.Add(1)
	return connect.NewResponse(&peerv1.RemovedResponse{}), nil
}

func startFakePeer(t *testing.T, accept bool) (*fakePeer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePeer{accept: accept}
	mux := http.NewServeMux()
	mux.Handle(peerv1connect.NewPeerServiceHandler(f, connect.WithReadMaxBytes(2<<20)))
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: &protos}
	go func() { _ = srv.Serve(byteListener{Listener: ln, f: f}) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f, ln.Addr().String()
}

// byteListener hands on connections that open with 'P' and counts the rest.
type byteListener struct {
	net.Listener
	f *fakePeer
}

func (l byteListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil || b[0] != 'P' {
			l.f.raw.Add(1)
			_ = c.Close()
			continue
		}
		return c, nil
	}
}

// TestBadPeerRequestsFindsAcceptance: against a port that refuses
// everything, one round sends every kind of request and finds nothing;
// against one that applies every proposal, each accepted proposal is a
// finding (so the fault can fail a run).
func TestBadPeerRequestsFindsAcceptance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	good, addr := startFakePeer(t, false)
	a := newPeerAttack(addr, []string{"n2", "n3"})
	a.round(ctx)
	if f := a.found(); len(f) != 0 {
		t.Fatalf("findings against a port that refuses everything: %v", f)
	}
	// Every command under every header, but the oversized body, which the
	// port refuses before its handler.
	want := int64((len(badCommands(nil)) - 1) * len(a.headers()))
	if got := good.proposals.Load(); got != want {
		t.Fatalf("the port's handler saw %d proposals, want %d", got, want)
	}
	if good.removed.Load() == 0 || good.raw.Load() == 0 {
		t.Fatalf("no forged removal notice (%d) or junk connection (%d)", good.removed.Load(), good.raw.Load())
	}
	if !strings.Contains(a.summary(), "0 accepted") {
		t.Fatalf("summary: %s", a.summary())
	}

	_, addr = startFakePeer(t, true)
	b := newPeerAttack(addr, []string{"n2", "n3"})
	b.round(ctx)
	found := b.found()
	if len(found) == 0 {
		t.Fatal("a port that applies every bad proposal produced no finding")
	}
	if !strings.Contains(strings.Join(found, "\n"), "Propose set-no-idempotency-window as no-header") {
		t.Fatalf("findings do not name the request: %v", found)
	}
}

// TestBadPeerRequestsFaultReportsFindings: through the executor, the
// findings reach the fault's record.
func TestBadPeerRequestsFaultReportsFindings(t *testing.T) {
	_, addr := startFakePeer(t, true)
	f := newFake()
	f.raft = addr
	x := newTestExecutor(f)
	if err := x.one(context.Background(), Planned{Kind: "bad-peer-requests", For: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	recs := x.Records()
	if len(recs) != 1 || len(recs[0].Findings) == 0 || !strings.Contains(recs[0].Note, "bad peer requests") {
		t.Fatalf("records: %+v", recs)
	}
}
