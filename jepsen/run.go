package jepsen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/optoutd/optoutd/jepsen/checker"
	"github.com/optoutd/optoutd/jepsen/db"
	"github.com/optoutd/optoutd/jepsen/history"
	"github.com/optoutd/optoutd/jepsen/nemesis"
	"github.com/optoutd/optoutd/jepsen/report"
	"github.com/optoutd/optoutd/jepsen/workload"
)

// RunConfig is one run: one cluster, one workload, one schedule.
type RunConfig struct {
	Name        string
	Backend     string // "netns" or "docker"
	Nodes       int
	Concurrency int
	Keys        int
	Time        time.Duration
	Nemeses     []string
	Overlap     bool
	// Workload is WorkloadRegister (registers, set and watch streams; ""
	// means it) or WorkloadEnforce.
	Workload string
	// NegativeControl, for the register workload, starts every node with
	// --unsafe-stale-reads-for-chaos-tests; the run succeeds only if the
	// checker finds a linearizability violation. For the enforcement
	// workload the clean services skip the fence instead, and the run
	// succeeds only if the checker finds an event processed after an
	// acknowledged opt-out.
	NegativeControl bool
	Seed            uint64
	OutRoot         string
	Binary          string // netns: the optoutd executable
	Image           string // docker: the optoutd image
	CheckTimeout    time.Duration
	// Progress receives progress lines; TTY makes them refresh in place.
	Progress io.Writer
	TTY      bool
	Log      *slog.Logger
}

// Timings shared by every run.
const (
	recoveryTime  = 3 * time.Second  // healed, under load, before the workload ends
	graceAfter    = 10 * time.Second // unavailability window after a fault heals
	readyTimeout  = 60 * time.Second
	convergeLimit = 60 * time.Second
	finalLimit    = 60 * time.Second
	watchCatchUp  = 30 * time.Second
)

// ServerArgs are the flags every node gets: small snapshot settings so the
// lagging-follower fault can force InstallSnapshot within seconds, and a
// server request timeout shorter than the client's so that the server,
// not the client, usually decides a request's outcome.
func ServerArgs(negative bool) []string {
	args := []string{"--snapshot-threshold", "64", "--trailing-logs", "32", "--snapshot-interval", "1s",
		"--request-timeout", "2s", "--log-level", "info"}
	if negative {
		args = append(args, "--unsafe-stale-reads-for-chaos-tests")
	}
	return args
}

// Validate checks a run's configuration, naming the flag at fault.
func (c *RunConfig) Validate() error {
	switch {
	case c.Backend != "netns" && c.Backend != "docker":
		return fmt.Errorf("--backend: %q is not netns or docker", c.Backend)
	case c.Nodes < 3:
		return fmt.Errorf("--nodes: %d is too few; a fault-tolerant cluster needs at least 3", c.Nodes)
	case c.Nodes > 20:
		return fmt.Errorf("--nodes: %d is more than this harness runs (20)", c.Nodes)
	case c.Time <= 0:
		return fmt.Errorf("--time: %v must be positive", c.Time)
	case c.Concurrency < 1:
		return fmt.Errorf("--concurrency: %d must be at least 1", c.Concurrency)
	case c.Keys < 1:
		return fmt.Errorf("--keys: %d must be at least 1", c.Keys)
	case len(c.Nemeses) == 0:
		return errors.New("--nemesis: name at least one fault")
	case c.Workload != "" && c.Workload != WorkloadRegister && c.Workload != WorkloadEnforce:
		return fmt.Errorf("--workload: unknown %q (choose %s or %s)", c.Workload, WorkloadRegister, WorkloadEnforce)
	}
	for _, n := range c.Nemeses {
		if _, err := nemesis.Lookup(n); err != nil {
			return fmt.Errorf("--nemesis: %w", err)
		}
	}
	return nil
}

func (c *RunConfig) schedule() ([]nemesis.Planned, error) {
	sc := nemesis.DefaultSchedule(c.Nemeses, c.Time, c.Seed)
	sc.Recovery = recoveryTime
	sc.Overlap = c.Overlap
	plan, err := nemesis.Plan(sc)
	if err != nil {
		return nil, fmt.Errorf("--time: %w", err)
	}
	return plan, nil
}

func (c *RunConfig) backend(dataRoot, logDir string) (db.Backend, error) {
	opts := db.Options{Nodes: c.Nodes, ServerArgs: ServerArgs(c.unsafeReads()), LogDir: logDir, Log: c.Log}
	if c.Backend == "docker" {
		return db.NewDocker(context.Background(), db.DockerOptions{Options: opts, Image: c.Image})
	}
	return db.NewNetns(db.NetnsOptions{Options: opts, Binary: c.Binary, DataRoot: dataRoot})
}

// Run performs one run and writes its directory. The error is about the
// harness (the cluster could not be set up); what the checkers found is in
// the Results.
func Run(ctx context.Context, cfg RunConfig) (*report.Results, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	plan, err := cfg.schedule()
	if err != nil {
		return nil, err
	}
	wall := time.Now()
	dir := filepath.Join(cfg.OutRoot, wall.Format("20060102-150405")+"-"+report.SafeName(cfg.Name))
	if err := os.MkdirAll(filepath.Join(dir, "nodes"), 0o755); err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	dataRoot, err := os.MkdirTemp("", db.TempDirPattern)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dataRoot)
	db.CleanupTempDirs(cfg.Log, dataRoot)
	b, err := cfg.backend(dataRoot, filepath.Join(dir, "nodes"))
	if err != nil {
		return nil, err
	}
	res := &report.Results{Name: cfg.Name, Dir: dir, Backend: cfg.Backend, Nodes: cfg.Nodes, Concurrency: cfg.Concurrency,
		Keys: cfg.Keys, Seed: cfg.Seed, Nemeses: cfg.Nemeses, Overlap: cfg.Overlap, NegativeControl: cfg.NegativeControl,
		Workload: cfg.workload(), ServerArgs: ServerArgs(cfg.unsafeReads()), Started: wall, Schedule: plan}
	teardown := func() {
		tctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := b.Teardown(tctx); err != nil {
			res.HarnessErrors = append(res.HarnessErrors, "teardown: "+err.Error())
		}
	}
	cfg.Log.Info("starting cluster", "run", cfg.Name, "backend", b.Name(), "nodes", cfg.Nodes, "dir", dir)
	if err := b.Setup(ctx); err != nil {
		teardown()
		return nil, err
	}
	cl, err := newCluster(b)
	if err != nil {
		teardown()
		return nil, err
	}
	defer cl.close()
	if err := cl.waitReady(ctx, readyTimeout); err != nil {
		teardown()
		return nil, fmt.Errorf("%w (node logs in %s)", err, filepath.Join(dir, "nodes"))
	}
	if err := cl.definePurposes(ctx, readyTimeout, cfg.purposes()...); err != nil {
		teardown()
		return nil, err
	}
	d, err := drive(ctx, cfg, cl, plan, res)
	if err != nil {
		teardown()
		return nil, err
	}
	rec, wl := d.rec, d.wl
	if d.execErr != nil {
		res.HarnessErrors = append(res.HarnessErrors, "nemesis: "+d.execErr.Error())
	}
	workloadEnd := rec.Now()
	res.WorkloadSeconds = float64(workloadEnd) / 1e9
	switch {
	case ctx.Err() != nil:
		// Interrupted: no convergence wait or final reads; the history so
		// far is still checked.
		d.watchers.Stop()
		res.Interrupted = true
	case d.enf != nil:
		enforceAfterwards(ctx, cl, d.enf, res)
	default:
		afterwards(ctx, cl, rec, wl, res)
		watchAfterwards(ctx, rec, d.watchers, res)
	}
	teardown()
	check(ctx, cfg, rec, res, workloadEnd)
	res.WallSeconds = time.Since(wall).Seconds()
	if err := write(cfg, rec, res); err != nil {
		return res, err
	}
	return res, nil
}

// driven is what drive leaves: the history, the workload (for its final
// reads) and the nemesis's error, if it could not apply a fault.
type driven struct {
	rec      *history.Recorder
	wl       *workload.Workload
	enf      *workload.Enforce // the enforcement workload instead of wl
	watchers *workload.Watchers
	execErr  error
}

// drive runs the workload and the nemesis together for cfg.Time.
func drive(ctx context.Context, cfg RunConfig, cl *cluster, plan []nemesis.Planned, res *report.Results) (driven, error) {
	rec := history.NewRecorder()
	load, d, err := newLoad(cfg, cl, rec)
	if err != nil {
		return driven{}, err
	}
	watchers := d.watchers
	x := nemesis.NewExecutor(cl, cfg.Log, rec.Now, cfg.Seed)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	var wg sync.WaitGroup
	var wlErr, execErr error
	execDone := make(chan struct{})
	wg.Add(3)
	// The workload finishes its in-flight requests after wctx ends. The
	// schedule heals everything by cfg.Time-recovery; when applying faults
	// took longer (a slow container restart), the workload runs on until
	// it has had the recovery time under load after the last heal.
	go func() { defer wg.Done(); wlErr = load(wctx) }()
	go func() { defer wg.Done(); defer close(execDone); execErr = x.Run(ctx, rec.Start(), plan) }()
	go func() {
		defer wg.Done()
		defer wcancel()
		t := time.NewTimer(cfg.Time)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case <-ctx.Done():
			return
		case <-execDone:
		}
		if late := time.Duration(rec.Now()) - (cfg.Time - recoveryTime); late > 0 {
			cfg.Log.Info("faults healed late; extending the workload for the recovery period", "by", late.Round(time.Millisecond))
			t.Reset(min(late, recoveryTime))
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}()
	pctx, pcancel := context.WithCancel(ctx)
	pdone := make(chan struct{})
	go func() {
		defer close(pdone)
		p := &report.Progress{W: cfg.Progress, TTY: cfg.TTY, Label: cfg.Name, Total: cfg.Time, Rec: rec, Fault: x.Active}
		p.Run(pctx)
	}()
	wg.Wait()
	pcancel()
	<-pdone
	res.Faults, res.FaultsByKind = report.Faults(x.Records())
	if wlErr != nil {
		watchers.Stop()
	}
	d.rec, d.execErr = rec, execErr
	return d, wlErr
}

// afterwards waits for convergence and reads every key on every node.
func afterwards(ctx context.Context, cl *cluster, rec *history.Recorder, wl *workload.Workload, res *report.Results) {
	res.Convergence = cl.converge(ctx, convergeLimit)
	// Each kind of final read gets its own deadline, so a node that never
	// answers one does not starve the other.
	rctx, rcancel := context.WithTimeout(ctx, finalLimit)
	defer rcancel()
	res.FinalReadFailures = wl.Register().FinalReads(rctx, rec, cl.endpoints(), 1000)
	sctx, scancel := context.WithTimeout(ctx, finalLimit)
	defer scancel()
	res.Set = checker.CheckSet(rec.Ops(), wl.Set().FinalReads(sctx, cl.endpoints()), workload.Probes())
}

// watchAfterwards lets every watcher reach the index all nodes converged
// on, stops them and checks what they received.
func watchAfterwards(ctx context.Context, rec *history.Recorder, ws *workload.Watchers, res *report.Results) {
	var final uint64
	if res.Convergence.Valid && len(res.Convergence.Digests) > 0 {
		final = res.Convergence.Digests[0].AppliedIndex
		cctx, cancel := context.WithTimeout(ctx, watchCatchUp)
		ws.CatchUp(cctx, final)
		cancel()
	}
	res.Watch = checker.CheckWatch(rec.Ops(), ws.Stop(), final)
}

// check runs the linearizability and monotonicity checkers and fills res.
func check(ctx context.Context, cfg RunConfig, rec *history.Recorder, res *report.Results, workloadEnd int64) {
	start := time.Now()
	ops := rec.Ops()
	opts := checker.DefaultOptions()
	if cfg.CheckTimeout > 0 {
		opts.Timeout = cfg.CheckTimeout
	}
	res.Linearizability = checker.CheckLinearizable(ctx, ops, opts)
	res.Monotonic = checker.CheckMonotonic(ops)
	if cfg.workload() == WorkloadEnforce {
		eo := checker.DefaultEnforceOptions(workload.SloppyService)
		eo.Fencing, eo.Interrupted = !cfg.NegativeControl, res.Interrupted
		er := checker.CheckEnforce(ops, eo)
		res.Enforce = &er
	}
	res.CheckSeconds = time.Since(start).Seconds()
	res.Ops = report.Summarize(ops)
	res.Ops.Checked = res.Linearizability.OpsChecked
	if res.Enforce != nil {
		res.Ops.Checked = res.Enforce.OpsChecked
	}
	res.Unavailability = report.ComputeUnavailability(ops, faultRecords(res.Faults), int64(graceAfter), workloadEnd)
	res.CollectAnomalies()
	res.Decide()
}

func faultRecords(fs []report.Fault) []nemesis.Record {
	out := make([]nemesis.Record, len(fs))
	for i, f := range fs {
		out[i] = f.Record
	}
	return out
}

// write produces the run directory's files.
func write(cfg RunConfig, rec *history.Recorder, res *report.Results) error {
	ops := rec.Ops()
	var errs []error
	errs = append(errs, history.WriteFile(filepath.Join(res.Dir, "history.jsonl"), ops))
	title := cfg.Name + " (" + strings.Join(cfg.Nemeses, ",") + ")"
	errs = append(errs, report.LatencyPlot(filepath.Join(res.Dir, "latency.png"), title, ops, res.Faults))
	errs = append(errs, report.RatePlot(filepath.Join(res.Dir, "rate.png"), title, ops, res.Faults))
	vis, err := report.WriteVisualizations(res.Dir, res.Linearizability.Failed, 2*time.Minute)
	errs = append(errs, err)
	errs = append(errs, res.WriteJSON(filepath.Join(res.Dir, "results.json")))
	errs = append(errs, report.WriteHTML(filepath.Join(res.Dir, "report.html"), res, vis))
	return errors.Join(errs...)
}
