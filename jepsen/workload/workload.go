package workload

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/jepsen/history"
)

// Purpose is the purpose of every key the harness writes.
const Purpose = "jepsen"

// Endpoint is one node's client API.
type Endpoint struct {
	Node string
	Addr string // host:port
}

// Mix weighs the operations a worker picks from.
type Mix struct {
	Get, Check, Write, CAS, Add int
}

// DefaultMix exercises every operation, reads a little more than writes.
func DefaultMix() Mix { return Mix{Get: 30, Check: 15, Write: 20, CAS: 20, Add: 15} }

// ReadHeavyMix is the negative control's: mostly reads, so a node that
// serves stale data is read from often while the others take writes.
func ReadHeavyMix() Mix { return Mix{Get: 55, Check: 10, Write: 30, CAS: 5} }

// Config configures a workload.
type Config struct {
	Endpoints   []Endpoint
	Concurrency int
	Keys        int
	Seed        uint64
	Mix         Mix
	// Timeout is when a client gives up on a request. The request is
	// cancelled rather than given a deadline, so the server's own
	// --request-timeout answers first with a definite outcome when it can.
	Timeout time.Duration
	// Think is the pause between two operations of one worker.
	Think time.Duration
	Log   *slog.Logger
}

// Generator is one source of operations. Register and Set are today's; a
// watch workload (streaming reads, which lands later) is a third
// Generator with its own checker.
type Generator interface {
	Name() string
	// Invoke performs one operation as w, records it and returns its
	// outcome.
	Invoke(ctx context.Context, w *Worker, op history.Type) history.Outcome
}

// Workload runs Concurrency workers, each bound to one node (worker i to
// node i mod n, the way Jepsen binds clients), until its context ends.
type Workload struct {
	cfg      Config
	rec      *history.Recorder
	register *Register
	set      *Set
	nextProc atomic.Int64
}

// New returns a workload recording into rec.
func New(cfg Config, rec *history.Recorder) (*Workload, error) {
	if len(cfg.Endpoints) == 0 || cfg.Concurrency < 1 || cfg.Keys < 1 {
		return nil, fmt.Errorf("workload: need endpoints, concurrency >= 1 and keys >= 1 (got %d, %d, %d)", len(cfg.Endpoints), cfg.Concurrency, cfg.Keys)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	w := &Workload{cfg: cfg, rec: rec, register: &Register{Keys: cfg.Keys}, set: &Set{}}
	w.nextProc.Store(int64(cfg.Concurrency))
	return w, nil
}

// Register is the register generator.
func (wl *Workload) Register() *Register { return wl.register }

// Set is the set generator.
func (wl *Workload) Set() *Set { return wl.set }

// Run drives the workers until ctx ends.
func (wl *Workload) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, wl.cfg.Concurrency)
	for i := range wl.cfg.Concurrency {
		ep := wl.cfg.Endpoints[i%len(wl.cfg.Endpoints)]
		cl, err := client.New([]string{ep.Addr})
		if err != nil {
			return fmt.Errorf("workload: client for %s: %w", ep.Node, err)
		}
		w := &Worker{ID: i, Node: ep.Node, Client: cl, wl: wl, process: i,
			rng: rand.New(rand.NewPCG(wl.cfg.Seed, uint64(i))), known: map[string]uint64{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			errs[i] = w.loop(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Worker is one client issuing one request at a time to one node.
type Worker struct {
	ID     int
	Node   string
	Client *client.Client
	wl     *Workload
	// process is the logical process (porcupine's client id); a worker
	// whose request ended with an unknown outcome takes a new one, since
	// the old one may still be "in" that request forever.
	process int
	rng     *rand.Rand
	seq     int
	known   map[string]uint64 // last version this worker saw per key
}

func (w *Worker) loop(ctx context.Context) error {
	m := w.wl.cfg.Mix
	total := m.Get + m.Check + m.Write + m.CAS + m.Add
	if total <= 0 {
		return fmt.Errorf("workload: empty mix")
	}
	for ctx.Err() == nil {
		n := w.rng.IntN(total)
		var op history.Type
		switch {
		case n < m.Get:
			op = history.Get
		case n < m.Get+m.Check:
			op = history.Check
		case n < m.Get+m.Check+m.Write:
			op = history.Write
		case n < m.Get+m.Check+m.Write+m.CAS:
			op = history.CAS
		default:
			op = history.Add
		}
		var g Generator = w.wl.register
		if op == history.Add {
			g = w.wl.set
		}
		out := g.Invoke(ctx, w, op)
		pause := w.wl.cfg.Think
		if out == history.Fail || out == history.NotApplied {
			pause += 50 * time.Millisecond // do not spin against a node that is down
		}
		if pause > 0 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	return nil
}

// request gives a request its own context: it survives the end of the run
// (an in-flight request is completed, not abandoned, so its outcome is
// known) and is cancelled after the workload's timeout.
func (w *Worker) request() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t := time.AfterFunc(w.wl.cfg.Timeout, cancel)
	return ctx, func() { t.Stop(); cancel() }
}

// record completes op and adds it to the history; an unknown outcome moves
// the worker to a new process.
func (w *Worker) record(op history.Op) history.Outcome {
	op.Process, op.Worker, op.Node = w.process, w.ID, w.Node
	op.Return = w.wl.rec.Now()
	w.wl.rec.Add(op)
	if op.Outcome == history.Unknown {
		w.process = int(w.wl.nextProc.Add(1))
	}
	return op.Outcome
}

func (w *Worker) tag() string {
	w.seq++
	return fmt.Sprintf("w%d-%d", w.ID, w.seq)
}

// stateName maps the wire state to the history's.
func stateName(s optoutv1.State) string {
	switch s {
	case optoutv1.State_STATE_OPTED_OUT:
		return "opted_out"
	case optoutv1.State_STATE_OPTED_IN:
		return "opted_in"
	}
	return ""
}

// ClassifyWrite turns a write's error into an outcome, using the client's
// own classification: NOT_APPLIED (including a refused dial) is certain,
// anything else may have applied.
func ClassifyWrite(err error) (history.Outcome, uint64) {
	if connect.CodeOf(err) == connect.CodeFailedPrecondition {
		if cur, ok := client.CurrentVersion(err); ok {
			return history.Mismatch, cur
		}
	}
	if client.Outcome(err) == optoutv1.Outcome_OUTCOME_NOT_APPLIED {
		return history.NotApplied, 0
	}
	return history.Unknown, 0
}

func codeOf(err error) string {
	if err == nil {
		return ""
	}
	return connect.CodeOf(err).String()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
