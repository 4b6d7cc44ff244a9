package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/cluster/clustertest"
	"github.com/optoutd/optoutd/store"
)

func key(s string) optoutd.Key { return optoutd.Key{SubjectID: s, Purpose: "email_marketing"} }

func set(ctx context.Context, n *cluster.Node, subject string, st optoutd.State, expected *uint64) (optoutd.Record, error) {
	res, err := store.New(n).Set(ctx, optoutd.SetRequest{Key: key(subject), State: st, Source: "test", ExpectedVersion: expected})
	return res.Record, err
}

func get(ctx context.Context, n *cluster.Node, subject string) (optoutd.Record, bool, uint64, error) {
	var rec optoutd.Record
	var ok bool
	idx, err := n.Read(ctx, func(v optoutd.View) (err error) {
		rec, ok, err = v.Get(key(subject))
		return err
	})
	return rec, ok, idx, err
}

func TestWriteThroughFollowerIsForwardedAndVisibleEverywhere(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 30*time.Second)
	for i, f := range c.Followers(leader) {
		subject := fmt.Sprintf("via-%s", f.ID())
		rec, err := set(ctx, f, subject, optoutd.StateOptedOut, nil)
		if err != nil {
			t.Fatalf("set through follower %s: %v", f.ID(), err)
		}
		if rec.Version == 0 || rec.State != optoutd.StateOptedOut {
			t.Fatalf("write %d returned %+v", i, rec)
		}
		// A read right after the write sees it, on every node.
		for _, n := range c.Nodes() {
			got, ok, idx, err := get(ctx, n, subject)
			if err != nil || !ok || got.Version != rec.Version {
				t.Fatalf("read on %s after write: %+v ok=%v err=%v", n.ID(), got, ok, err)
			}
			if idx < rec.Version {
				t.Fatalf("read on %s used read index %d below the write's index %d", n.ID(), idx, rec.Version)
			}
		}
	}
}

func TestCompareAndSet(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 30*time.Second)
	follower := c.Followers(leader)[0]
	zero := uint64(0)

	first, err := set(ctx, follower, "cas", optoutd.StateOptedOut, &zero)
	if err != nil {
		t.Fatalf("create with expected 0: %v", err)
	}
	_, err = set(ctx, leader, "cas", optoutd.StateOptedIn, &zero)
	var de *optoutd.Error
	if !errors.As(err, &de) || de.Code != optoutd.VersionMismatch || de.CurrentVersion != first.Version {
		t.Fatalf("second create: %v, want version mismatch with current %d", err, first.Version)
	}
	stale := first.Version + 100
	if _, err := set(ctx, follower, "cas", optoutd.StateOptedIn, &stale); optoutd.ErrorCode(err) != optoutd.VersionMismatch {
		t.Fatalf("stale CAS through follower: %v, want version mismatch", err)
	}
	rec, _, _, err := get(ctx, follower, "cas")
	if err != nil || rec.State != optoutd.StateOptedOut || rec.Version != first.Version {
		t.Fatalf("rejected CAS changed the record: %+v %v", rec, err)
	}
	ok := first.Version
	second, err := set(ctx, follower, "cas", optoutd.StateOptedIn, &ok)
	if err != nil || second.Version <= first.Version {
		t.Fatalf("CAS with the right version: %+v %v", second, err)
	}
}

func TestInvalidWriteChangesNothing(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 30*time.Second)
	before := leader.FSM().AppliedIndex()
	for _, req := range []optoutd.SetRequest{
		{Key: optoutd.Key{SubjectID: "", Purpose: "p"}, State: optoutd.StateOptedOut},
		{Key: optoutd.Key{SubjectID: "u", Purpose: "Bad Purpose"}, State: optoutd.StateOptedOut},
		{Key: optoutd.Key{SubjectID: "u", Purpose: "p"}},
		{Key: optoutd.Key{SubjectID: "\xff", Purpose: "p"}, State: optoutd.StateOptedOut},
		{Key: optoutd.Key{SubjectID: strings.Repeat("s", optoutd.MaxSubjectIDBytes+1), Purpose: "email_marketing"}, State: optoutd.StateOptedOut},
		{Key: optoutd.Key{SubjectID: "u", Purpose: "email_marketing"}, State: optoutd.StateOptedOut, Source: strings.Repeat("s", optoutd.MaxSourceBytes+1)},
		{Key: optoutd.Key{SubjectID: "u", Purpose: "email_marketing"}, State: optoutd.StateOptedOut, Reason: strings.Repeat("r", optoutd.MaxReasonBytes+1)},
		{Key: optoutd.Key{SubjectID: "u", Purpose: "email_marketing"}, State: optoutd.StateOptedOut, Reason: "bad \xff utf-8"},
		{Key: optoutd.Key{SubjectID: "u", Purpose: "email_marketing"}, State: optoutd.StateOptedOut, IdempotencyKey: strings.Repeat("k", optoutd.MaxIdempotencyKeyBytes+1)},
	} {
		if _, err := store.New(leader).Set(ctx, req); optoutd.ErrorCode(err) != optoutd.Invalid {
			t.Fatalf("Set(%+v) = %v, want invalid", req, err)
		}
	}
	if after := leader.FSM().AppliedIndex(); after != before {
		t.Fatalf("invalid writes reached the log: applied %d -> %d", before, after)
	}
}

// TestLeaderKilledDuringWrites: every acknowledged write survives the
// leader's death and is on every node once it is back.
func TestLeaderKilledDuringWrites(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)

	var (
		mu    sync.Mutex
		acked = map[string]uint64{}
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				nodes := c.Nodes()
				if len(nodes) == 0 {
					continue
				}
				n := nodes[rand.IntN(len(nodes))]
				subject := fmt.Sprintf("w%d-%d", w, i)
				wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				rec, err := set(wctx, n, subject, optoutd.StateOptedOut, nil)
				cancel()
				if err == nil {
					mu.Lock()
					acked[subject] = rec.Version
					mu.Unlock()
				}
			}
		}()
	}
	clustertest.Eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 50 {
			return fmt.Errorf("%d writes acknowledged", len(acked))
		}
		return nil
	})
	old := leader.ID()
	c.Stop(old)
	newLeader := c.WaitLeader(20*time.Second, old)
	if newLeader.ID() == old {
		t.Fatal("the stopped node is still leader")
	}
	mu.Lock()
	atKill := len(acked)
	mu.Unlock()
	clustertest.Eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < atKill+50 {
			return fmt.Errorf("%d writes acknowledged since the kill", len(acked)-atKill)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	c.Start(old)
	c.WaitLeader(20 * time.Second)

	for _, n := range c.Nodes() {
		for subject, v := range acked {
			rec, ok, _, err := get(ctx, n, subject)
			if err != nil || !ok || rec.Version != v {
				t.Fatalf("acknowledged write %s@%d on %s: %+v ok=%v err=%v", subject, v, n.ID(), rec, ok, err)
			}
		}
	}
	t.Logf("%d acknowledged writes checked on %d nodes", len(acked), len(c.Nodes()))
}

func TestRestartedFollowerCatchesUp(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)
	f := c.Followers(leader)[0].ID()
	c.Stop(f)
	var last optoutd.Record
	for i := 0; i < 100; i++ {
		var err error
		if last, err = set(ctx, leader, fmt.Sprintf("s%d", i), optoutd.StateOptedOut, nil); err != nil {
			t.Fatal(err)
		}
	}
	n := c.Start(f)
	clustertest.Eventually(t, 20*time.Second, func() error {
		if got := n.FSM().AppliedIndex(); got < last.Version {
			return fmt.Errorf("%s applied %d of %d", f, got, last.Version)
		}
		return nil
	})
	rec, ok, _, err := get(ctx, n, "s99")
	if err != nil || !ok || rec.Version != last.Version {
		t.Fatalf("restarted follower reads %+v ok=%v err=%v", rec, ok, err)
	}
}

// TestLaggingFollowerGetsSnapshot: the leader has compacted away the entries
// a stopped follower missed, so the follower can only catch up by
// InstallSnapshot.
func TestLaggingFollowerGetsSnapshot(t *testing.T) {
	c := clustertest.New(t, 3, func(cfg *cluster.Config) {
		cfg.SnapshotThreshold = 32
		cfg.TrailingLogs = 4
		cfg.SnapshotInterval = time.Hour // snapshots only when the test asks
	})
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)
	fid := c.Followers(leader)[0].ID()
	c.Stop(fid)
	stoppedAt := leader.FSM().AppliedIndex()
	var last optoutd.Record
	for i := 0; i < 200; i++ {
		var err error
		if last, err = set(ctx, leader, fmt.Sprintf("lag%d", i), optoutd.StateOptedOut, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := leader.Raft().Snapshot().Error(); err != nil {
		t.Fatalf("leader snapshot: %v", err)
	}
	first, err := leader.FirstLogIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first <= stoppedAt+1 {
		t.Fatalf("leader log still starts at %d; the follower (stopped at %d) could replay it", first, stoppedAt)
	}
	f := c.Start(fid)
	clustertest.Eventually(t, 30*time.Second, func() error {
		if got := f.FSM().AppliedIndex(); got < last.Version {
			return fmt.Errorf("follower applied %d of %d", got, last.Version)
		}
		return nil
	})
	// hashicorp/raft records the installed snapshot just after the FSM's
	// Restore returns, so the FSM can be caught up a moment before the
	// stats say how; a follower that replayed the log never records one.
	clustertest.Eventually(t, 10*time.Second, func() error {
		if s := f.Raft().Stats()["last_snapshot_index"]; s == "0" {
			return fmt.Errorf("follower caught up without installing a snapshot (stats %v)", f.Raft().Stats())
		}
		return nil
	})
	for _, subject := range []string{"lag0", "lag199"} {
		if rec, ok, _, err := get(ctx, f, subject); err != nil || !ok {
			t.Fatalf("follower after snapshot: %s: %+v ok=%v err=%v", subject, rec, ok, err)
		}
	}
}

func TestFullClusterRestartKeepsEveryRecord(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)
	want := map[string]uint64{}
	for i := 0; i < 50; i++ {
		rec, err := set(ctx, leader, fmt.Sprintf("r%d", i), optoutd.StateOptedOut, nil)
		if err != nil {
			t.Fatal(err)
		}
		want[rec.SubjectID] = rec.Version
	}
	ids := c.IDs()
	c.StopAll()
	for _, id := range ids {
		c.Start(id)
	}
	c.WaitLeader(20 * time.Second)
	for _, n := range c.Nodes() {
		for s, v := range want {
			if rec, ok, _, err := get(ctx, n, s); err != nil || !ok || rec.Version != v {
				t.Fatalf("after full restart, %s on %s: %+v ok=%v err=%v", s, n.ID(), rec, ok, err)
			}
		}
	}
}

// TestDeposedLeaderCannotServeReads: an isolated leader must neither answer
// a read from its (soon stale) state nor acknowledge a write.
func TestDeposedLeaderCannotServeReads(t *testing.T) {
	c := clustertest.New(t, 3)
	old := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)
	if _, err := set(ctx, old, "x", optoutd.StateOptedIn, nil); err != nil {
		t.Fatal(err)
	}
	c.Net.Isolate(old.ID())
	newLeader := c.WaitLeader(20*time.Second, old.ID())
	rec, err := set(ctx, newLeader, "x", optoutd.StateOptedOut, nil)
	if err != nil {
		t.Fatal(err)
	}

	// By now the isolated node has usually stepped down on its lease, so
	// this read takes the follower path; TestDeposedLeaderStillInItsLease-
	// CannotServeReads covers a deposed node that still believes it leads.
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	got, _, _, err := get(rctx, old, "x")
	cancel()
	if err == nil {
		t.Fatalf("isolated old leader served a read: %+v (current version %d)", got, rec.Version)
	}
	if c := optoutd.ErrorCode(err); c != optoutd.Unavailable && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("isolated read failed with %v, want unavailable or deadline", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = set(wctx, old, "x", optoutd.StateOptedIn, nil)
	cancel()
	if err == nil {
		t.Fatal("isolated old leader acknowledged a write")
	}

	c.Net.Heal(old.ID())
	clustertest.Eventually(t, 20*time.Second, func() error {
		got, _, _, err := get(ctx, old, "x")
		if err != nil {
			return err
		}
		if got.State != optoutd.StateOptedOut {
			return fmt.Errorf("healed node reads %+v", got)
		}
		return nil
	})
	// The healed node has moved on to the term that deposed it.
	if got, want := old.Raft().CurrentTerm(), newLeader.Raft().CurrentTerm(); got < want {
		t.Fatalf("healed node is in term %d, behind the new leader's %d", got, want)
	}
}

func TestStatusListsEveryNode(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	for _, n := range c.Nodes() {
		clustertest.Eventually(t, 10*time.Second, func() error {
			st, err := n.Status(context.Background())
			if err != nil {
				return err
			}
			if st.LeaderID != leader.ID() || len(st.Nodes) != 3 {
				return fmt.Errorf("status on %s: %+v", n.ID(), st)
			}
			leaders := 0
			for _, ns := range st.Nodes {
				if ns.APIAddress == "" {
					return fmt.Errorf("node %s has not registered its API address yet", ns.ID)
				}
				if ns.Leader {
					leaders++
				}
			}
			if leaders != 1 {
				return fmt.Errorf("%d nodes marked leader", leaders)
			}
			return nil
		})
	}
}
