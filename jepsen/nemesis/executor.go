package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/optoutd/optoutd/jepsen/db"
)

// Record is one fault as it happened, on the run clock (ns).
type Record struct {
	ID      int      `json:"id"`
	Kind    string   `json:"kind"`
	Targets []string `json:"targets"`
	Start   int64    `json:"start_ns"`
	End     int64    `json:"end_ns"`
	Note    string   `json:"note,omitempty"`
	Error   string   `json:"error,omitempty"`
	// Findings are what the fault itself caught the cluster doing wrong.
	Findings []string `json:"findings,omitempty"`
}

type nodeState int

const (
	running nodeState = iota
	paused
	down
)

// Executor applies a schedule to a cluster. Active faults hold nodes down
// or paused and contribute drops; after every change the executor brings
// the cluster to the combination of what every active fault holds.
type Executor struct {
	c     Cluster
	log   *slog.Logger
	clock func() int64

	rngMu sync.Mutex
	rng   *rand.Rand

	mu      sync.Mutex // serialises changes to the cluster
	active  map[int]Effect
	names   map[int]string
	actual  map[string]nodeState
	drops   []db.Drop
	records []Record
	nextID  int
	// exclusive marks exclusive kinds with a fault in progress.
	exclusive map[string]bool
}

// NewExecutor returns an executor; clock is the run clock in ns.
func NewExecutor(c Cluster, log *slog.Logger, clock func() int64, seed uint64) *Executor {
	x := &Executor{c: c, log: log, clock: clock, rng: rand.New(rand.NewPCG(seed, 0x6e656d)),
		active: map[int]Effect{}, names: map[int]string{}, actual: map[string]nodeState{}, exclusive: map[string]bool{}}
	for _, id := range c.NodeIDs() {
		x.actual[id] = running
	}
	return x
}

// Run executes plan, measured from origin, and returns once every fault
// has ended. It heals everything before returning, also when ctx ends.
func (x *Executor) Run(ctx context.Context, origin time.Time, plan []Planned) error {
	var wg sync.WaitGroup
	errs := make([]error, len(plan))
	for i, p := range plan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTimer(time.Until(origin.Add(p.At)))
			defer t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			errs[i] = x.one(ctx, p)
		}()
	}
	wg.Wait()
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return errors.Join(append(errs, x.HealAll(hctx))...)
}

// Active describes the faults active now, for progress lines.
func (x *Executor) Active() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []string
	for id, e := range x.active {
		out = append(out, fmt.Sprintf("%s%v", x.names[id], e.Targets))
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " + ")
}

// Records returns every fault so far.
func (x *Executor) Records() []Record {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := append([]Record(nil), x.records...)
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

func (x *Executor) one(ctx context.Context, p Planned) error {
	k, err := Lookup(p.Kind)
	if err != nil {
		return err
	}
	env := &Env{Cluster: x.c, Up: x.upNodes(), rng: x.rng, mu: &x.rngMu}
	if len(env.Up) == 0 {
		x.log.Info("nemesis: skipping fault, no node is up", "kind", p.Kind)
		return nil
	}
	if k.Exclusive && !x.claim(p.Kind) {
		x.log.Info("nemesis: skipping fault, one of its kind is active", "kind", p.Kind)
		return nil
	}
	if k.Exclusive {
		defer x.unclaim(p.Kind)
	}
	eff, err := k.Begin(ctx, env)
	if err != nil {
		return fmt.Errorf("nemesis %s: %w", p.Kind, err)
	}
	id, rec, applyErr := x.hold(ctx, p.Kind, eff)
	x.log.Info("nemesis: fault begins", "kind", p.Kind, "targets", eff.Targets, "note", eff.Note)
	if applyErr == nil {
		rec.Note = x.wait(ctx, p, eff, rec.Note)
		if eff.Undo != nil {
			rec.Note = strings.TrimSpace(rec.Note + " " + eff.Undo(context.WithoutCancel(ctx)))
		}
		if eff.Findings != nil {
			rec.Findings = eff.Findings()
		}
	}
	releaseErr := x.release(context.WithoutCancel(ctx), id)
	x.log.Info("nemesis: fault healed", "kind", p.Kind, "targets", eff.Targets)
	if eff.After != nil && applyErr == nil {
		rec.Note = strings.TrimSpace(rec.Note + " " + eff.After(ctx))
	}
	err = errors.Join(applyErr, releaseErr)
	if err != nil {
		rec.Error = err.Error()
	}
	x.finish(id, rec)
	return err
}

// wait holds the fault for its planned time, or until its own condition.
func (x *Executor) wait(ctx context.Context, p Planned, eff Effect, note string) string {
	t := time.NewTimer(p.For)
	defer t.Stop()
	if eff.Until == nil {
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return note
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		done, n := eff.Until(ctx)
		if done {
			return strings.TrimSpace(note + " " + n)
		}
		select {
		case <-ctx.Done():
			return strings.TrimSpace(note + " " + n)
		case <-t.C:
			return strings.TrimSpace(note + " " + n + " (gave up after " + p.For.String() + ")")
		case <-tick.C:
		}
	}
}

func (x *Executor) upNodes() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var up []string
	for _, id := range x.c.NodeIDs() {
		if x.actual[id] == running && !x.heldLocked(id) {
			up = append(up, id)
		}
	}
	return up
}

func (x *Executor) heldLocked(id string) bool {
	for _, e := range x.active {
		if slices.Contains(e.Down, id) || slices.Contains(e.Paused, id) || slices.Contains(e.Holds, id) {
			return true
		}
	}
	return false
}

// claim marks an exclusive kind active; false if it already is.
func (x *Executor) claim(kind string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.exclusive[kind] {
		return false
	}
	x.exclusive[kind] = true
	return true
}

func (x *Executor) unclaim(kind string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.exclusive, kind)
}

func (x *Executor) hold(ctx context.Context, kind string, eff Effect) (int, Record, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.nextID++
	id := x.nextID
	x.active[id] = eff
	x.names[id] = kind
	rec := Record{ID: id, Kind: kind, Targets: eff.Targets, Start: x.clock(), Note: eff.Note}
	return id, rec, x.reconcileLocked(ctx)
}

func (x *Executor) release(ctx context.Context, id int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.active, id)
	delete(x.names, id)
	return x.reconcileLocked(ctx)
}

func (x *Executor) finish(id int, rec Record) {
	x.mu.Lock()
	defer x.mu.Unlock()
	rec.End = x.clock()
	x.records = append(x.records, rec)
}

// HealAll drops every hold and brings every node back.
func (x *Executor) HealAll(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	clear(x.active)
	clear(x.names)
	x.drops = []db.Drop{{}} // force a rewrite of the rules
	return x.reconcileLocked(ctx)
}

// Desired computes what the active effects hold each node to.
func Desired(ids []string, effects []Effect) (map[string]nodeState, []db.Drop) {
	want := map[string]nodeState{}
	seen := map[db.Drop]bool{}
	var drops []db.Drop
	for _, id := range ids {
		want[id] = running
	}
	for _, e := range effects {
		for _, id := range e.Paused {
			if want[id] == running {
				want[id] = paused
			}
		}
		for _, id := range e.Down {
			want[id] = down
		}
		for _, d := range e.Drops {
			if !seen[d] {
				seen[d] = true
				drops = append(drops, d)
			}
		}
	}
	sort.Slice(drops, func(i, j int) bool {
		if drops[i].To != drops[j].To {
			return drops[i].To < drops[j].To
		}
		return drops[i].From < drops[j].From
	})
	return want, drops
}

func (x *Executor) reconcileLocked(ctx context.Context) error {
	effects := make([]Effect, 0, len(x.active))
	for _, e := range x.active {
		effects = append(effects, e)
	}
	want, drops := Desired(x.c.NodeIDs(), effects)
	var errs []error
	if !slices.Equal(drops, x.drops) {
		if err := x.c.SetDrops(ctx, drops); err != nil {
			errs = append(errs, err)
		} else {
			x.drops = drops
		}
	}
	for _, id := range x.c.NodeIDs() {
		if err := x.moveLocked(ctx, id, x.actual[id], want[id]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// moveLocked takes one node from its actual state to the wanted one.
func (x *Executor) moveLocked(ctx context.Context, id string, from, to nodeState) error {
	if from == to {
		return nil
	}
	var err error
	switch {
	case to == down:
		err = x.c.Kill(ctx, id)
	case from == down:
		if err = x.c.Start(ctx, id); err == nil && to == paused {
			err = x.c.Pause(ctx, id)
		}
	case to == paused:
		err = x.c.Pause(ctx, id)
	default: // paused -> running
		err = x.c.Resume(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("nemesis: %s: %w", id, err)
	}
	x.actual[id] = to
	return nil
}
