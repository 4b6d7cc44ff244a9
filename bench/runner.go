package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// RoundResult is one round: the fsync floor, every cell with each
// system's run of it, and each system's whole-run figures.
type RoundResult struct {
	Round int `json:"round"`
	// Order is the order of the whole-system steps (start-up, preload,
	// failover); each cell has its own.
	Order      []string                `json:"order"`
	FsyncFloor FsyncProbe              `json:"fsync_floor"`
	Cells      []*CellRun              `json:"cells"`
	Systems    map[string]*SystemRound `json:"systems"`
}

// CellRun is one cell in one round: the systems back to back.
type CellRun struct {
	Cell
	Order []string                `json:"order"`
	Runs  map[string]*WorkloadRun `json:"runs"`
}

// SystemRound is one cluster's lifetime in a round, beyond the cells.
type SystemRound struct {
	StartupSeconds float64 `json:"startup_seconds"`
	PreloadSeconds float64 `json:"preload_seconds"`
	// PeakRSSBytes: node -> its highest VmHWM over the round.
	PeakRSSBytes map[string]int64 `json:"peak_rss_bytes,omitempty"`
	// Disk: the data dirs after the round, nodes stopped.
	Disk     *DiskUsage       `json:"disk,omitempty"`
	Failover []FailoverSample `json:"failover,omitempty"`
	Error    string           `json:"error,omitempty"`
	Note     string           `json:"note,omitempty"`
}

type runner struct {
	cfg      Config
	prog     *progress
	builds   map[string]optoutdBuild
	self     string
	keys     []string
	choosers map[string]keyChooser
}

// starter is a System that has something to say about how it started.
type starter interface{ StartNote() string }

// liveSystem is a started cluster and its clients.
type liveSystem struct {
	name   string
	sys    System
	dir    string
	ops    func(int) Ops // for --target
	allOps func(int) Ops // spread over all nodes
	sr     *SystemRound
}

func newRunner(cfg Config, prog *progress, builds map[string]optoutdBuild, self string) *runner {
	r := &runner{cfg: cfg, prog: prog, builds: builds, self: self, keys: subjects(cfg.Keys), choosers: map[string]keyChooser{}}
	for _, d := range cfg.Dists {
		r.choosers[d] = newChooser(d, cfg.Keys, cfg.ZipfTheta)
	}
	return r
}

func (r *runner) runAll(ctx context.Context, res *Results) error {
	var errs []error
	for round := 1; round <= r.cfg.Rounds; round++ {
		rr := &RoundResult{Round: round, Order: roundOrder(r.cfg.Systems, round), Systems: map[string]*SystemRound{}}
		res.Rounds = append(res.Rounds, rr)
		r.prog.step(fmt.Sprintf("[round %d/%d]", round, r.cfg.Rounds), "fsync floor", 0, nil)
		rr.FsyncFloor = probeFsync(os.TempDir(), probeSamples, probeLimit)
		r.prog.logf("[round %d/%d] fsync floor in %s: p50 %.2f ms, p99 %.2f ms over %d syncs%s", round, r.cfg.Rounds,
			rr.FsyncFloor.Dir, rr.FsyncFloor.P50Ms, rr.FsyncFloor.P99Ms, rr.FsyncFloor.Samples, errNote(rr.FsyncFloor.Error))
		err := r.runRound(ctx, rr)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("round %d: %w", round, err))
		}
	}
	return errors.Join(errs...)
}

func errNote(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}

func (r *runner) prefix(round int, name string) string {
	return fmt.Sprintf("[round %d/%d %-*s]", round, r.cfg.Rounds, nameWidth(r.cfg.Systems), name)
}

// runRound starts every system, runs the cells with the systems back to
// back in each, then the failover samples, and stops and measures them.
// Every node and temp dir is gone when it returns.
func (r *runner) runRound(ctx context.Context, rr *RoundResult) error {
	var errs []error
	fail := func(ls *liveSystem, err error) {
		ls.sr.Error = err.Error()
		r.prog.logf("%s FAILED: %v", r.prefix(rr.Round, ls.name), err)
		errs = append(errs, fmt.Errorf("%s: %w", ls.name, err))
	}
	live := map[string]*liveSystem{}
	defer func() {
		for _, ls := range live {
			ls.sys.Close()
			_ = os.RemoveAll(ls.dir)
		}
	}()
	for _, name := range rr.Order {
		ls, err := r.startSystem(ctx, name, rr.Round)
		if ls != nil {
			rr.Systems[name] = ls.sr
			live[name] = ls
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if ls == nil {
				rr.Systems[name] = &SystemRound{}
				ls = &liveSystem{name: name, sr: rr.Systems[name]}
			}
			fail(ls, err)
			r.stop(live, name)
		}
	}
	cells := planCells(r.cfg)
	for i, cell := range cells {
		cr := &CellRun{Cell: cell, Order: cellOrder(r.cfg.Systems, rr.Round, i), Runs: map[string]*WorkloadRun{}}
		rr.Cells = append(rr.Cells, cr)
		for _, name := range cr.Order {
			ls := live[name]
			if ls == nil {
				continue
			}
			prefix := fmt.Sprintf("[round %d/%d cell %d/%d %-*s]", rr.Round, r.cfg.Rounds, i+1, len(cells), nameWidth(r.cfg.Systems), name)
			run, err := r.runCell(ctx, ls, cell, rr.Round, r.peers(live, name), prefix)
			if ctx.Err() != nil {
				return ctx.Err() // an interrupted run is not a measurement
			}
			if run != nil {
				cr.Runs[name] = run
			}
			if err != nil {
				fail(ls, fmt.Errorf("%s: %w", cell.Key(), err))
				r.stop(live, name)
			}
		}
		if cell.Workload == wlCache && (i+1 == len(cells) || cells[i+1].Workload != wlCache) {
			closeCaches(live)
		}
	}
	if r.cfg.has(wlFailover) {
		for _, name := range rr.Order {
			if ls := live[name]; ls != nil {
				if err := r.failover(ctx, ls, rr.Round); err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					fail(ls, err)
				}
			}
		}
	}
	for _, name := range rr.Order {
		if ls := live[name]; ls != nil {
			r.finish(ls, rr.Round)
			delete(live, name)
		}
	}
	return errors.Join(errs...)
}

// stop kills a failed system's nodes and removes its dir.
func (r *runner) stop(live map[string]*liveSystem, name string) {
	if ls := live[name]; ls != nil {
		r.recordRSS(ls)
		ls.sys.Close()
		_ = os.RemoveAll(ls.dir)
		delete(live, name)
	}
}

// peers are the node processes of the other systems (idle meanwhile).
func (r *runner) peers(live map[string]*liveSystem, except string) []int {
	var out []int
	for name, ls := range live {
		if name != except {
			out = append(out, ls.sys.PIDs()...)
		}
	}
	return out
}

// startSystem starts one cluster in a fresh temp dir and preloads it.
func (r *runner) startSystem(ctx context.Context, name string, round int) (*liveSystem, error) {
	prefix := r.prefix(round, name)
	dir, err := os.MkdirTemp("", "optoutd-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	sys, err := newSystem(name, r.cfg, r.builds, r.self)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	ls := &liveSystem{name: name, sys: sys, dir: dir, sr: &SystemRound{}}
	t := time.Now()
	r.prog.step(prefix, "starting 3 nodes", 0, nil)
	if err := sys.Start(ctx, dir); err != nil {
		return ls, err
	}
	ls.sr.StartupSeconds = time.Since(t).Seconds()
	if st, ok := sys.(starter); ok && st.StartNote() != "" {
		ls.sr.Note = st.StartNote()
		r.prog.logf("%s %s", prefix, ls.sr.Note)
	}
	if ls.allOps, err = sys.Clients(ctx, targetAll); err != nil {
		return ls, err
	}
	ls.ops = ls.allOps
	if r.cfg.Target != targetAll {
		if ls.ops, err = sys.Clients(ctx, r.cfg.Target); err != nil {
			return ls, err
		}
	}
	var loaded atomic.Int64
	t = time.Now()
	r.prog.step(prefix, fmt.Sprintf("preloading %d keys", len(r.keys)), 0, &loaded)
	if err := preload(ctx, ls.allOps, r.keys, 64, r.cfg.OpTimeout, &loaded); err != nil {
		return ls, err
	}
	ls.sr.PreloadSeconds = time.Since(t).Seconds()
	r.prog.logf("%s started in %.1fs, preloaded %d keys in %.1fs", prefix, ls.sr.StartupSeconds, len(r.keys), ls.sr.PreloadSeconds)
	return ls, nil
}

// failover runs the failover samples of one system.
func (r *runner) failover(ctx context.Context, ls *liveSystem, round int) error {
	prefix := r.prefix(round, ls.name)
	for n := 1; n <= r.cfg.FailoverSamples; n++ {
		r.prog.step(prefix, fmt.Sprintf("failover %d/%d", n, r.cfg.FailoverSamples), 0, nil)
		s, err := failoverSample(ctx, ls.sys, ls.allOps, r.keys, r.cfg, n)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ls.sr.Failover = append(ls.sr.Failover, s) // measured, even if the restart after it failed
		if err != nil {
			return fmt.Errorf("failover sample %d: %w", n, err)
		}
		note := ""
		if s.TimedOut {
			note = " (TIMED OUT)"
		}
		r.prog.logf("%s failover %d/%d killed %s: leader seen after %.0f ms, writes back after %.0f ms, reads after %.0f ms (load clients: %.0f / %.0f ms), new leader %s%s",
			prefix, n, r.cfg.FailoverSamples, s.Killed, s.LeaderElectedMs, s.WriteUnavailableMs, s.ReadUnavailableMs, s.LoadWriteRecoveryMs, s.LoadReadRecoveryMs, s.NewLeader, note)
	}
	return nil
}

func (r *runner) recordRSS(ls *liveSystem) {
	ls.sr.PeakRSSBytes = map[string]int64{}
	for i, p := range ls.sys.Procs() {
		ls.sr.PeakRSSBytes[ls.sys.NodeName(i)] = p.peakRSS()
	}
}

// finish records the peak RSS, stops the nodes, reads their data dirs
// offline and removes them.
func (r *runner) finish(ls *liveSystem, round int) {
	r.recordRSS(ls)
	ls.sys.Close()
	history := []string(nil)
	if ls.name != sysEtcd {
		history = optoutdHistory
	}
	ls.sr.Disk = diskUsage(ls.sys, ls.sys.DataDirs(), r.cfg.Keys, history)
	_ = os.RemoveAll(ls.dir)
	var peak int64
	for _, v := range ls.sr.PeakRSSBytes {
		peak = max(peak, v)
	}
	r.prog.logf("%s peak RSS %.0f MiB (largest node); data dir %.0f bytes/record (of which history %.0f) over %d records",
		r.prefix(round, ls.name), float64(peak)/(1<<20), ls.sr.Disk.BytesPerRecord, ls.sr.Disk.HistoryBytesPerRecord, ls.sr.Disk.Records)
}

// nameWidth pads system names in progress lines: 7 ("optoutd") at least.
func nameWidth(systems []string) int {
	w := 7
	for _, s := range systems {
		w = max(w, len(s))
	}
	return w
}

func firstErrNote(run *WorkloadRun) string {
	if run.FirstError == "" {
		return ""
	}
	e := run.FirstError
	if len(e) > 120 {
		e = e[:120] + "..."
	}
	return " (first: " + e + ")"
}
