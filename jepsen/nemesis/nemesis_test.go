package nemesis

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/jepsen/db"
)

func TestPlanSequentialNeverOverlaps(t *testing.T) {
	for seed := uint64(0); seed < 50; seed++ {
		cfg := DefaultSchedule(Names(), 3*time.Minute, seed)
		plan, err := Plan(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range plan {
			if p.End() > cfg.Total-cfg.Recovery {
				t.Fatalf("seed %d: fault %d ends at %v, after %v", seed, i, p.End(), cfg.Total-cfg.Recovery)
			}
			if p.At < cfg.Lead || p.For <= 0 {
				t.Fatalf("seed %d: bad fault %+v", seed, p)
			}
			if i > 0 && plan[i-1].End() >= p.At {
				t.Fatalf("seed %d: faults %d and %d overlap: %+v %+v", seed, i-1, i, plan[i-1], p)
			}
		}
	}
}

func TestPlanTakesTurnsAndIsDeterministic(t *testing.T) {
	kinds := []string{"kill", "pause", "partition-leader"}
	cfg := DefaultSchedule(kinds, 2*time.Minute, 42)
	a, err := Plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Plan(cfg)
	if !slices.Equal(a, b) {
		t.Fatal("same seed gave different plans")
	}
	for i, p := range a {
		if p.Kind != kinds[i%len(kinds)] {
			t.Fatalf("fault %d is %s, want %s", i, p.Kind, kinds[i%len(kinds)])
		}
	}
	cfg.Seed = 43
	c, _ := Plan(cfg)
	if slices.Equal(a, c) {
		t.Fatal("different seeds gave the same plan")
	}
}

func TestPlanOverlapOverlapsAndHeals(t *testing.T) {
	cfg := DefaultSchedule(Names(), 5*time.Minute, 1)
	cfg.Overlap = true
	plan, err := Plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	overlaps := 0
	seen := map[string]bool{}
	for i, p := range plan {
		seen[p.Kind] = true
		if p.End() > cfg.Total-cfg.Recovery {
			t.Fatalf("fault %d ends after the recovery deadline", i)
		}
		if i > 0 && plan[i-1].End() > p.At {
			overlaps++
		}
	}
	if overlaps == 0 {
		t.Fatal("overlap mode produced no overlapping faults")
	}
	if len(seen) != len(Names()) {
		t.Fatalf("only %d of %d kinds scheduled", len(seen), len(Names()))
	}
}

func TestPlanErrors(t *testing.T) {
	if _, err := Plan(DefaultSchedule([]string{"kill"}, 4*time.Second, 1)); !errors.Is(err, ErrTooShort) {
		t.Fatalf("short time: %v", err)
	}
	if _, err := Plan(DefaultSchedule([]string{"partition-everything"}, time.Minute, 1)); err == nil || !strings.Contains(err.Error(), "partition-leader") {
		t.Fatalf("unknown kind should list the valid ones: %v", err)
	}
	if _, err := Plan(DefaultSchedule([]string{"clock-skew"}, time.Minute, 1)); !errors.Is(err, ErrNotYet) {
		t.Fatalf("clock-skew: %v", err)
	}
	if _, err := Plan(DefaultSchedule(nil, time.Minute, 1)); err == nil {
		t.Fatal("no kinds accepted")
	}
}

func cut(drops []db.Drop, from, to string) bool {
	return slices.Contains(drops, db.Drop{From: from, To: to})
}

func TestShapes(t *testing.T) {
	all := []string{"n1", "n2", "n3", "n4", "n5"}
	iso := Isolate("n2", all)
	if len(iso) != 8 || !cut(iso, "n2", "n1") || !cut(iso, "n1", "n2") || cut(iso, "n1", "n3") {
		t.Fatalf("isolate: %v", iso)
	}
	br, mid := Bridge(all)
	if mid != "n3" {
		t.Fatalf("bridge node %s", mid)
	}
	for _, d := range br {
		if d.From == mid || d.To == mid {
			t.Fatalf("bridge node is cut: %v", d)
		}
	}
	if !cut(br, "n1", "n5") || !cut(br, "n5", "n1") || cut(br, "n1", "n2") || cut(br, "n4", "n5") {
		t.Fatalf("bridge: %v", br)
	}
	br3, mid3 := Bridge([]string{"a", "b", "c"})
	if mid3 != "b" || len(br3) != 2 || !cut(br3, "a", "c") {
		t.Fatalf("bridge of 3: %v %s", br3, mid3)
	}
	ow := OneWay(all, "n1")
	if len(ow) != 4 || !cut(ow, "n2", "n1") || cut(ow, "n1", "n2") {
		t.Fatalf("one way: %v", ow)
	}
	sp := Split([]string{"n1", "n2"}, []string{"n3", "n4", "n5"})
	if len(sp) != 12 || !cut(sp, "n5", "n2") || cut(sp, "n1", "n2") {
		t.Fatalf("split: %v", sp)
	}
}

func TestDesiredCombinesEffects(t *testing.T) {
	ids := []string{"n1", "n2", "n3"}
	want, drops := Desired(ids, []Effect{
		{Paused: []string{"n1", "n2"}},
		{Down: []string{"n2"}, Drops: Isolate("n3", ids)},
		{Drops: OneWay(ids, "n1")},
	})
	if want["n1"] != paused || want["n2"] != down || want["n3"] != running {
		t.Fatalf("states %v", want)
	}
	if len(drops) != 5 { // n3<->n1, n3<->n2, n2->n1 (n3->n1 shared)
		t.Fatalf("drops %v", drops)
	}
}

// fakeCluster records what the executor does to it.
type fakeCluster struct {
	mu      sync.Mutex
	state   map[string]nodeState
	drops   []db.Drop
	calls   []string
	leader  string
	removed map[string]bool
	raft    string // every node's Raft address, for bad-peer-requests
}

func newFake() *fakeCluster {
	return &fakeCluster{state: map[string]nodeState{"n1": running, "n2": running, "n3": running}, leader: "n2"}
}

func (f *fakeCluster) NodeIDs() []string         { return []string{"n1", "n2", "n3"} }
func (f *fakeCluster) RaftAddr(id string) string { return f.raft }
func (f *fakeCluster) set(op, id string, s nodeState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+id)
	f.state[id] = s
	return nil
}
func (f *fakeCluster) Kill(_ context.Context, id string) error   { return f.set("kill", id, down) }
func (f *fakeCluster) Start(_ context.Context, id string) error  { return f.set("start", id, running) }
func (f *fakeCluster) Pause(_ context.Context, id string) error  { return f.set("pause", id, paused) }
func (f *fakeCluster) Resume(_ context.Context, id string) error { return f.set("resume", id, running) }
func (f *fakeCluster) SetDrops(_ context.Context, d []db.Drop) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drops = append([]db.Drop(nil), d...)
	f.calls = append(f.calls, "drops")
	return nil
}
func (f *fakeCluster) Status(_ context.Context, id string) (*optoutv1.StatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := "Follower"
	if id == f.leader {
		st = "Leader"
	}
	var nodes []*optoutv1.Node
	for _, n := range []string{"n1", "n2", "n3"} {
		if !f.removed[n] {
			nodes = append(nodes, &optoutv1.Node{Id: n, Voter: true})
		}
	}
	return &optoutv1.StatusResponse{NodeId: id, RaftState: st, Term: 3, Nodes: nodes}, nil
}
func (f *fakeCluster) RemoveMember(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "remove "+id)
	if f.removed == nil {
		f.removed = map[string]bool{}
	}
	f.removed[id] = true
	return nil
}
func (f *fakeCluster) Rejoin(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "rejoin "+id)
	delete(f.removed, id)
	f.state[id] = running
	return nil
}

func (f *fakeCluster) stateOf(id string) nodeState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state[id]
}

func newTestExecutor(f *fakeCluster) *Executor {
	var clock int64
	var cm sync.Mutex
	return NewExecutor(f, slog.New(slog.DiscardHandler), func() int64 { cm.Lock(); defer cm.Unlock(); clock++; return clock }, 1)
}

// TestExecutorCombinesOverlappingFaults drives faults one step at a time
// (no timers): a pause held while kill-all comes and goes, then a
// partition of the leader.
func TestExecutorCombinesOverlappingFaults(t *testing.T) {
	f := newFake()
	x := newTestExecutor(f)
	pctx, stopPause := context.WithCancel(context.Background())
	pauseDone := make(chan error, 1)
	go func() { pauseDone <- x.one(pctx, Planned{Kind: "pause", For: time.Hour}) }()
	deadline := time.Now().Add(30 * time.Second)
	for f.stateOf("n2") != paused {
		if time.Now().After(deadline) {
			t.Fatal("the leader was never paused")
		}
		time.Sleep(time.Millisecond)
	}
	if err := x.one(context.Background(), Planned{Kind: "kill-all", For: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	// kill-all is over but the pause still holds: n2 restarted and paused.
	if f.stateOf("n1") != running || f.stateOf("n2") != paused || f.stateOf("n3") != running {
		t.Fatalf("after kill-all: %v; calls %v", f.state, f.calls)
	}
	stopPause()
	if err := <-pauseDone; err != nil {
		t.Fatal(err)
	}
	if f.stateOf("n2") != running {
		t.Fatalf("pause not released: %v", f.state)
	}
	if err := x.one(context.Background(), Planned{Kind: "partition-leader", For: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	recs := x.Records()
	if len(recs) != 3 {
		t.Fatalf("records %+v", recs)
	}
	for _, r := range recs {
		if r.End < r.Start || r.Error != "" {
			t.Fatalf("bad record %+v", r)
		}
		if (r.Kind == "pause" || r.Kind == "partition-leader") && (len(r.Targets) != 1 || r.Targets[0] != "n2") {
			t.Fatalf("%s should target the leader n2: %+v", r.Kind, r)
		}
	}
	for _, want := range []string{"pause n2", "kill n1", "kill n2", "start n2", "resume n2", "drops"} {
		if !slices.Contains(f.calls, want) {
			t.Fatalf("no %q in calls %v", want, f.calls)
		}
	}
	if len(f.drops) != 0 || x.Active() != "none" {
		t.Fatalf("partition not healed: %v, active %s", f.drops, x.Active())
	}
}

// TestExecutorRunHealsEverything runs a timed plan and checks that every
// node ends up running with no partition.
func TestExecutorRunHealsEverything(t *testing.T) {
	f := newFake()
	x := newTestExecutor(f)
	plan := []Planned{{Kind: "kill", At: 0, For: 5 * time.Millisecond}, {Kind: "partition-bridge", At: 0, For: 5 * time.Millisecond}}
	if err := x.Run(context.Background(), time.Now(), plan); err != nil {
		t.Fatal(err)
	}
	for id, s := range f.state {
		if s != running {
			t.Fatalf("%s left in state %d; calls %v", id, s, f.calls)
		}
	}
	if len(f.drops) != 0 || len(x.Records()) != 2 {
		t.Fatalf("drops %v records %+v", f.drops, x.Records())
	}
}

func TestMembershipRemovesAndReAdds(t *testing.T) {
	f := newFake()
	x := newTestExecutor(f)
	if err := x.one(context.Background(), Planned{Kind: "membership", For: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	recs := x.Records()
	if len(recs) != 1 || len(recs[0].Targets) != 1 {
		t.Fatalf("%+v", recs)
	}
	id := recs[0].Targets[0]
	if !slices.Contains(f.calls, "remove "+id) || !slices.Contains(f.calls, "rejoin "+id) {
		t.Fatalf("calls %v", f.calls)
	}
	if !strings.Contains(recs[0].Note, "a voter again") || len(f.removed) != 0 {
		t.Fatalf("note %q, removed %v", recs[0].Note, f.removed)
	}
}
