package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/cluster/clustertest"
	peerv1 "github.com/optoutd/optoutd/cluster/gen/optout/peer/v1"
	"github.com/optoutd/optoutd/cluster/gen/optout/peer/v1/peerv1connect"
)

// TestConcurrentRemovalsKeepQuorum: two removals at once are judged one
// after the other, so together they cannot remove a quorum. Before the fix
// both passed their quorum check against the same configuration and left
// {n2, n4} with n4 down: no leader, ever.
func TestConcurrentRemovalsKeepQuorum(t *testing.T) {
	c := clustertest.New(t, 4)
	ctx := clustertest.Ctx(t, 90*time.Second)
	first := c.WaitLeader(10 * time.Second)
	if _, err := first.TransferLeadership(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 20*time.Second, func() error {
		if c.Node("n2").Raft().State() != raft.Leader {
			return errors.New("n2 is not leader yet")
		}
		return c.Node("n2").Ready()
	})
	leader := c.Node("n2")
	if _, err := set(ctx, leader, "before", optoutd.StateOptedOut, nil); err != nil {
		t.Fatal(err)
	}
	c.Stop("n4")

	var wg sync.WaitGroup
	errs := map[string]error{}
	var mu sync.Mutex
	start := make(chan struct{})
	for _, id := range []string{"n1", "n3"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := leader.RemoveMember(ctx, id)
			mu.Lock()
			errs[id] = err
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	t.Logf("remove n1: %v; remove n3: %v", errs["n1"], errs["n3"])
	if errs["n1"] == nil && errs["n3"] == nil {
		t.Fatalf("both removals succeeded; voters now %v with n4 down", voters(t, leader))
	}
	for id, err := range errs {
		if err != nil && optoutd.ErrorCode(err) != optoutd.FailedPrecondition {
			t.Errorf("remove %s: %v, want failed_precondition naming the quorum", id, err)
		}
	}
	// The cluster still has a quorum and takes writes.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := set(wctx, leader, "after", optoutd.StateOptedOut, nil); err != nil {
		t.Fatalf("write after the removals: %v (voters %v)", err, voters(t, leader))
	}
}

// TestUncommittedRemovalIsNotFinal: while a configuration without node A is
// only appended on the leader, not committed, the leader tells A "change in
// flight", not "you were removed"; a node told it was removed writes its
// REMOVED marker and never serves again, even if the removal is later lost
// with the leader. Once the removal commits, A is told. Before the fix the
// configuration index was always 0 (hashicorp/raft v1.7.3 fills in only the
// servers), so the leader was always "sure".
func TestUncommittedRemovalIsNotFinal(t *testing.T) {
	gates := map[string]*clustertest.LogGate{}
	var mu sync.Mutex
	c := clustertest.New(t, 3, func(cfg *cluster.Config) {
		g := clustertest.NewLogGate()
		mu.Lock()
		gates[cfg.ID] = g
		mu.Unlock()
		cfg.TestingLogStore = g.Wrap
	})
	for _, g := range gates {
		t.Cleanup(g.Release) // runs before the nodes stop
	}
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)
	if _, err := set(ctx, leader, "ready", optoutd.StateOptedOut, nil); err != nil {
		t.Fatal(err)
	}
	fs := c.Followers(leader)
	a, b := fs[0], fs[1]
	// b keeps answering heartbeats but stores no new entry, so the
	// configuration {leader, b} cannot commit.
	gates[b.ID()].Hold(leader.Raft().CurrentTerm())
	go func() { _ = leader.Raft().RemoveServer(raft.ServerID(a.ID()), 0, 0).Error() }()
	clustertest.Eventually(t, 10*time.Second, func() error {
		if _, in := voters(t, leader)[a.ID()]; in {
			return errors.New("removal not appended yet")
		}
		return nil
	})
	asA := rawPeer(c.RaftAddr(leader.ID()), map[string]string{"Optout-Node-Id": a.ID()})
	_, err := asA.ReadIndex(ctx, connect.NewRequest(&peerv1.ReadIndexRequest{}))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnavailable || ce.Meta().Get("Optout-Removed") != "" {
		t.Fatalf("while the removal is uncommitted the leader answered %v (removed header %q), want unavailable without it",
			err, metaOf(ce, "Optout-Removed"))
	}
	if errors.Is(a.Ready(), cluster.ErrNodeRemoved) {
		t.Fatalf("%s considers itself removed before its removal committed", a.ID())
	}
	// Let the removal commit: now the leader is sure, and says so.
	gates[b.ID()].Release()
	clustertest.Eventually(t, 20*time.Second, func() error {
		_, err := asA.ReadIndex(ctx, connect.NewRequest(&peerv1.ReadIndexRequest{}))
		if !errors.As(err, &ce) || ce.Code() != connect.CodeFailedPrecondition || ce.Meta().Get("Optout-Removed") != "true" {
			return fmt.Errorf("after the removal committed the leader answered %w", err)
		}
		return nil
	})
}

func metaOf(ce *connect.Error, k string) string {
	if ce == nil {
		return ""
	}
	return ce.Meta().Get(k)
}

// fakeLearner is a learner that answers only PeerService: its Info says it
// is caught up, and the test can hold an Info call open.
type fakeLearner struct {
	peerv1connect.UnimplementedPeerServiceHandler
	addr    string
	calls   atomic.Int64
	holdAt  int64         // the Info call with this number blocks...
	held    chan struct{} // ...closing held...
	release chan struct{} // ...until release is closed
}

func startFakeLearner(t *testing.T, holdAt int64) *fakeLearner {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeLearner{addr: ln.Addr().String(), holdAt: holdAt, held: make(chan struct{}), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle(peerv1connect.NewPeerServiceHandler(f))
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: &protos}
	go func() { _ = srv.Serve(peerOnly{ln}) }()
	t.Cleanup(func() {
		select {
		case <-f.release:
		default:
			close(f.release)
		}
		_ = srv.Close()
	})
	return f
}

func (f *fakeLearner) Info(ctx context.Context, _ *connect.Request[peerv1.InfoRequest]) (*connect.Response[peerv1.InfoResponse], error) {
	if f.calls.Add(1) == f.holdAt {
		close(f.held)
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return connect.NewResponse(&peerv1.InfoResponse{NodeId: "n9", AppliedIndex: 1 << 40, LastLogIndex: 1 << 40}), nil
}

func (f *fakeLearner) Removed(context.Context, *connect.Request[peerv1.RemovedRequest]) (*connect.Response[peerv1.RemovedResponse], error) {
	return connect.NewResponse(&peerv1.RemovedResponse{}), nil
}

// peerOnly accepts connections that open with the peer protocol byte and
// drops the rest (Raft trying to replicate to the fake).
type peerOnly struct{ net.Listener }

func (l peerOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil || b[0] != 'P' {
			_ = c.Close()
			continue
		}
		return c, nil
	}
}

// TestAutoPromotionNeverReaddsARemovedLearner: the leader probes a learner,
// an operator removes it while the probe is out, and the probe then says
// "caught up". The promotion must not bring the removed node back as a
// voter. Before the fix it did (AddVoter with no configuration index).
func TestAutoPromotionNeverReaddsARemovedLearner(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)
	if _, err := set(ctx, leader, "ready", optoutd.StateOptedOut, nil); err != nil {
		t.Fatal(err)
	}
	// Promotion needs two caught-up probes in a row; hold the second.
	f := startFakeLearner(t, 2)
	if _, err := leader.AddMember(ctx, "n9", f.addr, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.held:
	case <-ctx.Done():
		t.Fatal("the leader never probed the learner twice")
	}
	if _, err := leader.RemoveMember(ctx, "n9"); err != nil {
		t.Fatalf("remove the learner while it is being probed: %v", err)
	}
	if _, in := voters(t, leader)["n9"]; in {
		t.Fatal("n9 still a member after its removal")
	}
	close(f.release)
	// Give the promotion loop several rounds to do the wrong thing.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if v, in := voters(t, leader)["n9"]; in {
			t.Fatalf("the removed learner is back in the configuration (voter=%v)", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestJoinRetryAfterUnknownOutcomeIsIdempotent: --join retries AddMember
// when the answer to the first attempt was lost; if that attempt was
// applied, the retry (same node, same address, still a learner) succeeds
// instead of being refused as "lost its state". A voter joining with no
// data is still refused.
func TestJoinRetryAfterUnknownOutcomeIsIdempotent(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)
	_, addr := c.Add("n4")
	if _, err := leader.AddMember(ctx, "n4", addr, true); err != nil {
		t.Fatal(err)
	}
	// The retry of the same join.
	if _, err := leader.AddMember(ctx, "n4", addr, true); err != nil {
		t.Fatalf("retrying the join of a learner at the same address: %v", err)
	}
	if _, err := leader.AddMember(ctx, "n4", "127.0.0.1:1", true); optoutd.ErrorCode(err) != optoutd.FailedPrecondition {
		t.Fatalf("joining n4 at another address: %v, want failed_precondition", err)
	}
}
