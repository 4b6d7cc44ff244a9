package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/cluster/clustertest"
	"github.com/prometheus/client_golang/prometheus"
)

// TestConcurrentReadsShareReadIndexRounds: reads that arrive together share
// one quorum round on the leader and one RPC to the leader on a follower,
// and batching never costs freshness: while a writer keeps rewriting the
// key, every read sees at least the last write acknowledged before it
// began (a read that joined a round captured before it would not).
func TestConcurrentReadsShareReadIndexRounds(t *testing.T) {
	regs := map[string]*prometheus.Registry{}
	var mu sync.Mutex
	c := clustertest.New(t, 3, func(cfg *cluster.Config) {
		reg := prometheus.NewRegistry()
		mu.Lock()
		regs[cfg.ID] = reg
		mu.Unlock()
		cfg.Metrics = reg
	})
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 30*time.Second)
	if _, err := set(ctx, leader, "b", optoutd.StateOptedOut, nil); err != nil {
		t.Fatal(err)
	}
	// The writer: "b" opted out again and again, each write a new version.
	var acked atomic.Uint64
	stopWriter := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stopWriter:
				writerDone <- nil
				return
			default:
			}
			rec, err := set(ctx, c.Nodes()[i%3], "b", optoutd.StateOptedOut, nil)
			if err != nil {
				writerDone <- err
				return
			}
			for {
				cur := acked.Load()
				if rec.Version <= cur || acked.CompareAndSwap(cur, rec.Version) {
					break
				}
			}
		}
	}()
	const reads = 200
	for _, n := range []*cluster.Node{leader, c.Followers(leader)[0]} {
		before := rounds(t, regs[n.ID()])
		start := make(chan struct{})
		errs := make(chan error, reads)
		var wg sync.WaitGroup
		for i := 0; i < reads; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				floor := acked.Load() // acknowledged before this read began
				rec, ok, idx, err := get(ctx, n, "b")
				if err == nil && (!ok || rec.State != optoutd.StateOptedOut || rec.Version < floor) {
					err = fmt.Errorf("read on %s at index %d: %+v ok=%v, but version %d was acknowledged before it began", n.ID(), idx, rec, ok, floor)
				}
				errs <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		used := rounds(t, regs[n.ID()]) - before
		t.Logf("%s: %d concurrent reads used %d read-index rounds", n.ID(), reads, used)
		if used < 1 || used > reads/2 {
			t.Fatalf("%s: %d reads used %d rounds; they are not being batched", n.ID(), reads, used)
		}
	}
	close(stopWriter)
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if acked.Load() == 0 {
		t.Fatal("the writer acknowledged nothing while the reads ran")
	}
}

func rounds(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "optoutd_read_index_rounds_total" {
			return int(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	t.Fatal("no optoutd_read_index_rounds_total metric")
	return 0
}

// TestUnsafeLocalReadsAreCaught is the negative control of
// TestDeposedLeaderCannotServeReads: with the read index turned off, the
// same scenario does return stale data, so that test can fail.
func TestUnsafeLocalReadsAreCaught(t *testing.T) {
	c := clustertest.New(t, 3, func(cfg *cluster.Config) { cfg.UnsafeLocalReads = true })
	old := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)
	if _, err := set(ctx, old, "x", optoutd.StateOptedIn, nil); err != nil {
		t.Fatal(err)
	}
	c.Net.Isolate(old.ID())
	newLeader := c.WaitLeader(20*time.Second, old.ID())
	if _, err := set(ctx, newLeader, "x", optoutd.StateOptedOut, nil); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	got, _, _, err := get(rctx, old, "x")
	if err != nil || got.State != optoutd.StateOptedIn {
		t.Fatalf("expected the unsafe read to return the stale opt-in, got %+v, %v", got, err)
	}
}
