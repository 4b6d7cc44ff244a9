package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/cluster/clustertest"
)

func voters(t *testing.T, n *cluster.Node) map[string]bool {
	t.Helper()
	cf := n.Raft().GetConfiguration()
	if err := cf.Error(); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, s := range cf.Configuration().Servers {
		out[string(s.ID)] = s.Suffrage == raft.Voter
	}
	return out
}

// load runs writers and readers against every live node until stop, and
// counts what failed.
type load struct {
	mu           sync.Mutex
	acked        map[string]uint64
	ackedKeys    []string
	readFailures atomic.Int64
	staleReads   atomic.Int64
	reads        atomic.Int64
	unknown      atomic.Int64
	stop         chan struct{}
	wg           sync.WaitGroup
}

// pick returns an acknowledged subject and its version, or false.
func (l *load) pick() (string, uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ackedKeys) == 0 {
		return "", 0, false
	}
	s := l.ackedKeys[rand.IntN(len(l.ackedKeys))]
	return s, l.acked[s], true
}

func startLoad(t *testing.T, c *clustertest.Cluster) *load {
	l := &load{acked: map[string]uint64{}, stop: make(chan struct{})}
	for w := 0; w < 3; w++ {
		l.wg.Add(2)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				nodes := c.Nodes()
				n := nodes[rand.IntN(len(nodes))]
				subject := fmt.Sprintf("load-%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				rec, err := set(ctx, n, subject, optoutd.StateOptedOut, nil)
				cancel()
				switch {
				case err == nil:
					l.mu.Lock()
					l.acked[subject] = rec.Version
					l.ackedKeys = append(l.ackedKeys, subject)
					l.mu.Unlock()
				case optoutd.ErrorCode(err) == optoutd.OutcomeUnknown:
					l.unknown.Add(1)
				}
			}
		}()
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				// Read a subject whose write was acknowledged before the
				// read began: a linearizable read must see it.
				subject, version, ok := l.pick()
				if !ok {
					select {
					case <-l.stop:
						return
					case <-time.After(5 * time.Millisecond): // no write acknowledged yet
					}
					continue
				}
				nodes := c.Nodes()
				n := nodes[rand.IntN(len(nodes))]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				rec, found, idx, err := get(ctx, n, subject)
				cancel()
				l.reads.Add(1)
				switch {
				case err != nil && optoutd.ErrorCode(err) != optoutd.FailedPrecondition:
					// A removed node answers failed_precondition by design.
					l.readFailures.Add(1)
					t.Logf("read on %s failed: %v", n.ID(), err)
				case err == nil && (!found || rec.Version != version || rec.State != optoutd.StateOptedOut):
					l.staleReads.Add(1)
					t.Logf("stale read on %s at index %d: %s is %+v (found=%v), acknowledged at %d", n.ID(), idx, subject, rec, found, version)
				}
			}
		}()
	}
	return l
}

func (l *load) finish() { close(l.stop); l.wg.Wait() }

func (l *load) checkNoLoss(t *testing.T, nodes []*cluster.Node) {
	t.Helper()
	ctx := clustertest.Ctx(t, 60*time.Second)
	for _, n := range nodes {
		for s, v := range l.acked {
			rec, ok, _, err := get(ctx, n, s)
			if err != nil || !ok || rec.Version != v {
				t.Fatalf("acknowledged write %s@%d on %s: %+v %v %v", s, v, n.ID(), rec, ok, err)
			}
		}
	}
}

// TestScaleThreeToFiveToThreeUnderLoad: learners join, are promoted once
// caught up, and are removed again while writes and linearizable reads go
// on; no read fails and no acknowledged write is lost.
func TestScaleThreeToFiveToThreeUnderLoad(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 120*time.Second)
	l := startLoad(t, c)

	for _, id := range []string{"n4", "n5"} {
		_, addr := c.Add(id)
		if _, err := leader.AddMember(ctx, id, addr, false); err != nil {
			t.Fatalf("add %s: %v", id, err)
		}
	}
	clustertest.Eventually(t, 60*time.Second, func() error {
		v := voters(t, leader)
		if !v["n4"] || !v["n5"] {
			return fmt.Errorf("not yet promoted: %v", v)
		}
		return nil
	})
	// Adding again is a no-op; adding at another address is refused, and so
	// is a node joining with no data under the id of a member (it lost its
	// state; an empty voter could vote twice in one term).
	if idx, err := leader.AddMember(ctx, "n4", c.RaftAddr("n4"), false); err != nil || idx != 0 {
		t.Fatalf("re-adding n4: %d %v", idx, err)
	}
	if _, err := leader.AddMember(ctx, "n4", "127.0.0.1:1", false); optoutd.ErrorCode(err) != optoutd.FailedPrecondition {
		t.Fatalf("adding n4 at another address: %v", err)
	}
	if _, err := leader.AddMember(ctx, "n4", c.RaftAddr("n4"), true); optoutd.ErrorCode(err) != optoutd.FailedPrecondition || !strings.Contains(err.Error(), "lost its state") {
		t.Fatalf("n4 joining again with no data: %v", err)
	}
	for _, id := range []string{"n4", "n5"} {
		if _, err := c.Node("n1").RemoveMember(ctx, id); err != nil {
			t.Fatalf("remove %s: %v", id, err)
		}
	}
	l.finish()
	for _, id := range []string{"n4", "n5"} {
		c.Stop(id)
	}
	if v := voters(t, c.WaitLeader(20*time.Second)); len(v) != 3 {
		t.Fatalf("configuration after scale-down: %v", v)
	}
	if f := l.readFailures.Load(); f != 0 {
		t.Fatalf("%d of %d linearizable reads failed during 3 -> 5 -> 3", f, l.reads.Load())
	}
	if s := l.staleReads.Load(); s != 0 {
		t.Fatalf("%d of %d reads missed an acknowledged write during 3 -> 5 -> 3", s, l.reads.Load())
	}
	if l.reads.Load() == 0 {
		t.Fatal("no read ran")
	}
	l.checkNoLoss(t, c.Nodes())
	t.Logf("3 -> 5 -> 3: %d reads, %d acknowledged writes, %d unknown outcomes", l.reads.Load(), len(l.acked), l.unknown.Load())
}

// TestReplaceDeadNode: a dead member is removed and a fresh node takes its
// place, with every record.
func TestReplaceDeadNode(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 120*time.Second)
	dead := c.Followers(leader)[0].ID()
	c.Stop(dead)
	if _, err := leader.RemoveMember(ctx, dead); err != nil {
		t.Fatalf("remove dead %s: %v", dead, err)
	}
	for i := 0; i < 50; i++ {
		if _, err := set(ctx, leader, fmt.Sprintf("r%d", i), optoutd.StateOptedOut, nil); err != nil {
			t.Fatal(err)
		}
	}
	n4, addr := c.Add("n4")
	if _, err := leader.AddMember(ctx, "n4", addr, false); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 60*time.Second, func() error {
		if !voters(t, leader)["n4"] {
			return fmt.Errorf("n4 not promoted yet")
		}
		return nil
	})
	for i := 0; i < 50; i++ {
		if rec, ok, _, err := get(ctx, n4, fmt.Sprintf("r%d", i)); err != nil || !ok {
			t.Fatalf("replacement misses r%d: %+v %v %v", i, rec, ok, err)
		}
	}
}

// TestRemovalThatBreaksQuorumIsRefused: with one voter down, removing
// another healthy one would leave no reachable majority; so would removing
// the last voter.
func TestRemovalThatBreaksQuorumIsRefused(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)
	fs := c.Followers(leader)
	c.Stop(fs[0].ID())
	before := voters(t, leader)
	_, err := leader.RemoveMember(ctx, fs[1].ID())
	if optoutd.ErrorCode(err) != optoutd.FailedPrecondition || !strings.Contains(err.Error(), "quorum") {
		t.Fatalf("removing a healthy voter with another down: %v, want a refusal naming the quorum", err)
	}
	if after := voters(t, leader); len(after) != len(before) {
		t.Fatalf("refused removal changed the configuration: %v -> %v", before, after)
	}
	if _, err := leader.RemoveMember(ctx, "n9"); optoutd.ErrorCode(err) != optoutd.NotFound {
		t.Fatalf("removing a stranger: %v", err)
	}

	one := clustertest.New(t, 1)
	solo := one.WaitLeader(10 * time.Second)
	_, err = solo.RemoveMember(ctx, solo.ID())
	if optoutd.ErrorCode(err) != optoutd.FailedPrecondition || !strings.Contains(err.Error(), "last voter") {
		t.Fatalf("removing the last voter: %v", err)
	}
}

// TestRemovedNodeStopsServingUntilWiped: a removed node answers
// failed_precondition, keeps doing so after a restart, and can be wiped and
// re-added under the same id.
func TestRemovedNodeStopsServingUntilWiped(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 120*time.Second)
	victim := c.Followers(leader)[0].ID()
	if _, err := leader.RemoveMember(ctx, victim); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 10*time.Second, func() error {
		_, _, _, err := get(ctx, c.Node(victim), "x")
		if optoutd.ErrorCode(err) != optoutd.FailedPrecondition || !strings.Contains(err.Error(), "removed") {
			return fmt.Errorf("removed node answers %w", err)
		}
		return nil
	})
	c.Stop(victim)
	n := c.Start(victim)
	if _, err := set(ctx, n, "x", optoutd.StateOptedOut, nil); optoutd.ErrorCode(err) != optoutd.FailedPrecondition {
		t.Fatalf("restarted removed node accepted a write: %v", err)
	}
	c.Stop(victim)
	c.Wipe(victim)
	c.Configure(victim, func(cfg *cluster.Config) { cfg.InitialCluster = nil })
	n = c.Start(victim)
	if _, err := leader.AddMember(ctx, victim, c.RaftAddr(victim), false); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 30*time.Second, func() error {
		_, _, _, err := get(ctx, n, "x")
		if err != nil && optoutd.ErrorCode(err) != optoutd.NotFound {
			return err
		}
		return n.Ready()
	})
}

// TestRemovingTheLeaderTransfersLeadershipFirst.
func TestRemovingTheLeaderTransfersLeadershipFirst(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)
	old := leader.ID()
	if _, err := leader.RemoveMember(ctx, old); err != nil {
		t.Fatalf("remove the leader: %v", err)
	}
	newLeader := c.WaitLeader(20*time.Second, old)
	if v := voters(t, newLeader); len(v) != 2 || v[old] {
		t.Fatalf("configuration after removing the leader: %v", v)
	}
	if _, err := set(ctx, newLeader, "after", optoutd.StateOptedOut, nil); err != nil {
		t.Fatal(err)
	}
}

// TestMembershipRefusesBadIDs: every membership call checks the id before
// anything is proposed, and quotes at most a bounded part of it.
func TestMembershipRefusesBadIDs(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 30*time.Second)
	before := voters(t, leader)
	huge := strings.Repeat("x", 100_000)
	calls := map[string]func(id string) error{
		"add": func(id string) error {
			_, err := leader.AddMember(ctx, id, "127.0.0.1:7999", false)
			return err
		},
		"promote":  func(id string) error { _, err := leader.PromoteMember(ctx, id); return err },
		"remove":   func(id string) error { _, err := leader.RemoveMember(ctx, id); return err },
		"transfer": func(id string) error { _, err := leader.TransferLeadership(ctx, id); return err },
	}
	for name, call := range calls {
		for _, id := range []string{"bad id", "-n1", huge} {
			err := call(id)
			if optoutd.ErrorCode(err) != optoutd.Invalid || !strings.Contains(err.Error(), "id: ") || len(err.Error()) > 300 {
				t.Fatalf("%s(%.20q): %.400v, want a short invalid-argument error naming id", name, id, err)
			}
		}
	}
	if after := voters(t, leader); len(after) != len(before) {
		t.Fatalf("refused membership calls changed the configuration: %v -> %v", before, after)
	}
}
