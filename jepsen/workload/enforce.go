package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/jepsen/history"
)

// Names of the enforcement workload.
const (
	// EnforcePurpose is the (default allow) purpose of its subjects.
	EnforcePurpose = "jepsen-enforce"
	// UndefinedPurpose is never defined; false events name it.
	UndefinedPurpose = "jepsen-undefined"
	// SloppyService plants violations and reports them truthfully.
	SloppyService = "sloppy"
	// enforceWorker0 numbers the workload's actors apart from register
	// workers.
	enforceWorker0 = 2000
)

// EnforceConfig configures the enforcement workload.
type EnforceConfig struct {
	Endpoints []Endpoint
	Seed      uint64
	// Subjects is the pool of subjects whose opt-outs flip (and that get
	// ALLOW overrides).
	Subjects int
	// Producers gate events and put them on the queues.
	Producers int
	// Services are the clean consumers (each with its own queue and
	// ConsumersPerService goroutines).
	Services            []string
	ConsumersPerService int
	// Flippers flip the pool's subjects (each owns a share of them, so a
	// subject's writes are sequential); FlipEvery is each one's pause.
	Flippers  int
	FlipEvery time.Duration
	// OverrideEvery is the pause between ALLOW overrides; each lasts
	// OverrideMin to OverrideMax.
	OverrideEvery            time.Duration
	OverrideMin, OverrideMax time.Duration
	// PlantEvery is the pause between the sloppy service's planted events.
	PlantEvery time.Duration
	// ReportEvery is how often services send their reports.
	ReportEvery time.Duration
	// SkipFence is the negative control: the clean services process on the
	// producer's receipt alone (checked offline against the cluster's
	// public keys), never calling Fence.
	SkipFence bool
	// Timeout cancels a request (see Config.Timeout).
	Timeout time.Duration
	// Think is a producer's pause between events.
	Think time.Duration
	Queue QueueConfig
	Log   *slog.Logger
}

// DefaultEnforceConfig is the shape the harness runs: 16 subjects flipping
// about every two seconds each, three producers, two clean services.
func DefaultEnforceConfig(eps []Endpoint, seed uint64) EnforceConfig {
	return EnforceConfig{Endpoints: eps, Seed: seed, Subjects: 16, Producers: 3, Services: []string{"svc-a", "svc-b"},
		ConsumersPerService: 2, Flippers: 2, FlipEvery: 150 * time.Millisecond, OverrideEvery: 1500 * time.Millisecond,
		OverrideMin: 2 * time.Second, OverrideMax: 4 * time.Second, PlantEvery: 600 * time.Millisecond,
		ReportEvery: 700 * time.Millisecond, Timeout: 5 * time.Second, Think: 25 * time.Millisecond, Queue: DefaultQueue()}
}

// Validate checks the configuration.
func (c EnforceConfig) Validate() error {
	switch {
	case len(c.Endpoints) == 0:
		return errors.New("workload: enforce needs endpoints")
	case c.Subjects < 2 || c.Subjects > 10000:
		return fmt.Errorf("workload: enforce subjects %d must be 2..10000", c.Subjects)
	case c.Producers < 1 || c.ConsumersPerService < 1 || c.Flippers < 1 || len(c.Services) == 0:
		return errors.New("workload: enforce needs at least one producer, service, consumer and flipper")
	case c.Flippers > c.Subjects:
		return fmt.Errorf("workload: %d flippers for %d subjects", c.Flippers, c.Subjects)
	case c.OverrideMin <= 0 || c.OverrideMax < c.OverrideMin || c.Timeout <= 0 || c.ReportEvery <= 0:
		return errors.New("workload: enforce needs positive override lifetimes, timeout and report period")
	}
	for _, s := range c.Services {
		if s == SloppyService {
			return fmt.Errorf("workload: %q is the sloppy service, not a clean one", s)
		}
	}
	return nil
}

// Enforce is the enforcement workload: producers gate events with
// receipts onto queues that delay and redeliver; consumers fence each
// delivery and report what they processed; flippers opt the subjects out
// and back in meanwhile; an overrider opens short ALLOW overrides; false
// and forged events are injected; and a sloppy service plants violations.
// Everything is recorded in the history for checker.CheckEnforce.
type Enforce struct {
	cfg       EnforceConfig
	rec       *history.Recorder
	queues    map[string]*Queue
	reporters map[string]*reporter
	subjects  []string
	nextEvent atomic.Int64
	nextActor atomic.Int64
	sloppyN   atomic.Int64

	mu    sync.Mutex
	known map[string]subjectState
	keys  map[uint32][]byte // public receipt keys (negative control)
}

// subjectState is what a flipper last learnt about a subject.
type subjectState struct {
	known   bool
	out     bool
	version uint64
}

// NewEnforce returns the workload, recording into rec.
func NewEnforce(cfg EnforceConfig, rec *history.Recorder) (*Enforce, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Enforce{cfg: cfg, rec: rec, queues: map[string]*Queue{}, reporters: map[string]*reporter{}, known: map[string]subjectState{}}
	for i := range cfg.Subjects {
		e.subjects = append(e.subjects, fmt.Sprintf("enf-%d", i))
	}
	for i, s := range append([]string{SloppyService}, cfg.Services...) {
		e.queues[s] = NewQueue(cfg.Queue, cfg.Seed+uint64(i)*7919)
		e.reporters[s] = &reporter{service: s}
	}
	e.nextActor.Store(enforceWorker0)
	return e, nil
}

// Subjects lists the pool.
func (e *Enforce) Subjects() []string { return append([]string(nil), e.subjects...) }

// actor is one goroutine of the workload with its own client, preferring
// one node and failing over to the others, as a service would.
type actor struct {
	e    *Enforce
	id   int
	node string
	cl   *client.Client
	rng  *rand.Rand
}

func (e *Enforce) newActor() (*actor, error) {
	id := int(e.nextActor.Add(1))
	eps := e.cfg.Endpoints
	first := id % len(eps)
	addrs := make([]string, 0, len(eps))
	for k := range eps {
		addrs = append(addrs, eps[(first+k)%len(eps)].Addr)
	}
	cl, err := client.New(addrs)
	if err != nil {
		return nil, fmt.Errorf("workload: enforce client: %w", err)
	}
	return &actor{e: e, id: id, node: eps[first].Node, cl: cl, rng: rand.New(rand.NewPCG(e.cfg.Seed, uint64(id)))}, nil
}

// request is a context cancelled after the timeout, surviving the run's
// end so in-flight requests complete (see Worker.request).
func (a *actor) request() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t := time.AfterFunc(a.e.cfg.Timeout, cancel)
	return ctx, func() { t.Stop(); cancel() }
}

// record completes op and adds it to the history, returning its index.
func (a *actor) record(op history.Op) int {
	op.Process, op.Worker, op.Node = a.id, a.id, a.node
	if op.Return == 0 {
		op.Return = a.e.rec.Now()
	}
	return a.e.rec.Add(op)
}

func (a *actor) pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	d += time.Duration(a.rng.Int64N(int64(d)/2 + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Run drives every actor until ctx ends and lets in-flight requests
// finish. The reports still pending are sent by Flush.
func (e *Enforce) Run(ctx context.Context) error {
	type loop struct {
		n  int
		fn func(context.Context, *actor)
	}
	loops := []loop{{e.cfg.Producers, e.produce}, {1, e.overrides}, {1, e.plant}}
	for k := range e.cfg.Flippers {
		loops = append(loops, loop{1, func(ctx context.Context, a *actor) { e.flip(ctx, a, k) }})
	}
	consumers := []loop{{1, func(ctx context.Context, a *actor) { e.consume(ctx, a, SloppyService) }}}
	for _, s := range e.cfg.Services {
		consumers = append(consumers, loop{e.cfg.ConsumersPerService, func(ctx context.Context, a *actor) { e.consume(ctx, a, s) }})
	}
	reporters := []loop{}
	for _, s := range append([]string{SloppyService}, e.cfg.Services...) {
		reporters = append(reporters, loop{1, func(ctx context.Context, a *actor) { e.reporters[s].run(ctx, a, e.cfg.ReportEvery) }})
	}
	if e.cfg.SkipFence {
		e.loadKeys(ctx)
	}
	var wg sync.WaitGroup
	var actors []*actor
	start := func(ls []loop) error {
		for _, l := range ls {
			for range l.n {
				a, err := e.newActor()
				if err != nil {
					return err
				}
				actors = append(actors, a)
				wg.Add(1)
				go func() { defer wg.Done(); l.fn(ctx, a) }()
			}
		}
		return nil
	}
	err := errors.Join(start(loops), start(consumers), start(reporters))
	wg.Wait()
	for _, q := range e.queues {
		q.Close()
	}
	for _, a := range actors {
		a.cl.Close()
	}
	return err
}

// Flush sends every report still pending, retrying until ctx ends; it
// returns how many could not be sent.
func (e *Enforce) Flush(ctx context.Context) int {
	a, err := e.newActor()
	if err != nil {
		return e.pending()
	}
	defer a.cl.Close()
	for _, r := range e.reporters {
		r.flush(ctx, a)
	}
	return e.pending()
}

func (e *Enforce) pending() int {
	n := 0
	for _, r := range e.reporters {
		n += r.len()
	}
	return n
}

// QueueStats sums every queue's counts.
func (e *Enforce) QueueStats() QueueStats {
	var s QueueStats
	for _, q := range e.queues {
		t := q.Stats()
		s.Events += t.Events
		s.Deliveries += t.Deliveries
		s.Duplicates += t.Duplicates
		s.LongWaits += t.LongWaits
		s.Redelivered += t.Redelivered
		s.GaveUp += t.GaveUp
		s.Undelivered += t.Undelivered
	}
	return s
}

// falseSubjects are subject ids the API must refuse. The one that is not
// UTF-8 never leaves the Go client (protobuf will not encode it), which
// answers internal and retries until the request's deadline; it comes up a
// sixth of the time so that it does not stall the producers and consumers.
var falseSubjects = []string{"", "", strings.Repeat("x", 257), strings.Repeat("x", 300), "", "bad\xff\xfeutf8"}
