package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/cluster/clustertest"
)

// makeLeader moves leadership to id and waits until it serves.
func makeLeader(t *testing.T, c *clustertest.Cluster, ctx context.Context, id string) *cluster.Node {
	t.Helper()
	cur := c.WaitLeader(10 * time.Second)
	if cur.ID() != id {
		if _, err := cur.TransferLeadership(ctx, id); err != nil {
			t.Fatalf("transfer leadership to %s: %v", id, err)
		}
	}
	n := c.Node(id)
	clustertest.Eventually(t, 20*time.Second, func() error {
		if n.Raft().State() != raft.Leader {
			return fmt.Errorf("%s is %v", id, n.Raft().State())
		}
		_, err := set(ctx, n, "leader-ready", optoutd.StateOptedOut, nil)
		return err
	})
	return n
}

// TestDeposedLeaderStillInItsLeaseCannotServeReads: a leader cut off from
// the others keeps believing it leads for as long as its lease timer says
// (here: an hour). Meanwhile the others elect a new leader and take a
// write. A read on the old leader must not be answered from its state: the
// quorum round (VerifyLeader) is what refuses it. Without that round the
// read is served, stale; TestDeposedLeaderCannotServeReads cannot show
// this, because there the old leader steps down before the read and the
// read takes the follower path.
func TestDeposedLeaderStillInItsLeaseCannotServeReads(t *testing.T) {
	c := clustertest.New(t, 3, func(cfg *cluster.Config) {
		if cfg.ID == "n1" {
			cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = time.Hour, time.Hour, time.Hour
		}
	})
	ctx := clustertest.Ctx(t, 90*time.Second)
	old := makeLeader(t, c, ctx, "n1")
	if _, err := set(ctx, old, "x", optoutd.StateOptedIn, nil); err != nil {
		t.Fatal(err)
	}
	c.Net.Isolate("n1")
	newLeader := c.WaitLeader(20*time.Second, "n1")
	rec, err := set(ctx, newLeader, "x", optoutd.StateOptedOut, nil)
	if err != nil {
		t.Fatal(err)
	}
	if old.Raft().State() != raft.Leader {
		t.Fatal("setup: n1 stepped down, so the read below would not test the leader's path")
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	got, _, _, err := get(rctx, old, "x")
	cancel()
	if err == nil {
		t.Fatalf("the deposed leader served a read: %+v (the current version is %d)", got, rec.Version)
	}
	if code := optoutd.ErrorCode(err); code != optoutd.Unavailable && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the deposed leader's read failed with %v, want unavailable or the deadline", err)
	}
	if old.Raft().State() != raft.Leader {
		t.Fatal("setup: n1 stepped down during the read")
	}
}

// TestNewLeaderServesNoReadBeforeItsTermStarts: a new leader may not know
// that its predecessor committed entries it holds; until an entry of its
// own term commits, its commit index is behind. It must not serve a read
// from that index. Here the old leader commits x=out (acknowledged) and
// is cut off before it can tell the others, and the new leader's only
// follower answers heartbeats but stores nothing new, so the new term's
// first entry cannot commit. A read on the new leader must fail. Without
// the ready-term check it is served at the stale commit index.
func TestNewLeaderServesNoReadBeforeItsTermStarts(t *testing.T) {
	gates := map[string]*clustertest.LogGate{}
	var mu sync.Mutex
	c := clustertest.New(t, 3, func(cfg *cluster.Config) {
		g := clustertest.NewLogGate()
		mu.Lock()
		gates[cfg.ID] = g
		mu.Unlock()
		cfg.TestingLogStore = g.Wrap
		if cfg.ID == "n1" {
			// The old leader tells followers the commit index only with
			// new entries (heartbeats carry none), not every few ms.
			cfg.CommitTimeout = time.Hour
		}
	})
	for _, g := range gates {
		t.Cleanup(g.Release)
	}
	ctx := clustertest.Ctx(t, 90*time.Second)
	old := makeLeader(t, c, ctx, "n1")
	if _, err := set(ctx, old, "x", optoutd.StateOptedIn, nil); err != nil {
		t.Fatal(err)
	}
	// From the next term on, whichever of n2 and n3 follows stores no
	// entry (but still votes and answers heartbeats).
	term := old.Raft().CurrentTerm()
	for _, id := range []string{"n2", "n3"} {
		n := c.Node(id)
		gates[id].HoldUnless(term+1, func() bool { return n.Raft().State() == raft.Leader })
	}
	rec, err := set(ctx, old, "x", optoutd.StateOptedOut, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Net.Isolate("n1")
	var leader *cluster.Node
	var gate *clustertest.LogGate
	clustertest.Eventually(t, 20*time.Second, func() error {
		for _, id := range []string{"n2", "n3"} {
			if c.Node(id).Raft().State() == raft.Leader {
				leader = c.Node(id)
				gate = gates[map[string]string{"n2": "n3", "n3": "n2"}[id]]
				return nil
			}
		}
		return errors.New("no new leader yet")
	})
	select {
	case <-gate.Blocked():
	case <-ctx.Done():
		t.Fatal("the new leader's follower never held back the new term's entries")
	}
	if ci := leader.Raft().CommitIndex(); ci >= rec.Version {
		t.Fatalf("setup: %s learned the commit of %d (commit index %d); the read would not be stale", leader.ID(), rec.Version, ci)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	got, _, idx, err := get(rctx, leader, "x")
	cancel()
	if err == nil {
		t.Fatalf("the new leader %s served a read at index %d before its term started: %+v (x=out was acknowledged at %d)",
			leader.ID(), idx, got, rec.Version)
	}
	if leader.Raft().State() != raft.Leader {
		t.Fatalf("setup: %s stepped down during the read", leader.ID())
	}
	// Once the follower stores entries again the term starts and the read
	// sees x=out.
	gate.Release()
	clustertest.Eventually(t, 20*time.Second, func() error {
		got, _, _, err := get(ctx, leader, "x")
		if err != nil {
			return err
		}
		if got.Version < rec.Version || got.State != optoutd.StateOptedOut {
			return fmt.Errorf("%s reads %+v, want x=out at %d or later", leader.ID(), got, rec.Version)
		}
		return nil
	})
}
