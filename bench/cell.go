package main

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
)

// runCell measures one system in one cell: the workload, after its
// preparation (enforcement workloads), and for the cache workload on a
// system with a cache also plain Gate on the same keys, back to back (plain
// Gate first in even rounds).
func (r *runner) runCell(ctx context.Context, ls *liveSystem, cell Cell, round int, peers []int, prefix string) (*WorkloadRun, error) {
	eops, err := r.prepare(ctx, ls, cell, prefix)
	if err != nil {
		return nil, err
	}
	_, hasCache := sumCacheCounts(eops)
	withPlain := cell.Workload == wlCache && hasCache
	var plain *WorkloadRun
	if withPlain && round%2 == 0 {
		if plain, err = r.measure(ctx, ls, cell, nil, round, peers, prefix); err != nil {
			return nil, err
		}
	}
	run, err := r.measure(ctx, ls, cell, eops, round, peers, prefix)
	if err == nil && withPlain && plain == nil {
		plain, err = r.measure(ctx, ls, cell, nil, round, peers, prefix)
	}
	if run != nil {
		run.PlainGate = plain
	}
	return run, err
}

// measure runs one closed loop of the cell's workload on ls. eops are the
// enforcement clients whose caches are counted; for the cache workload,
// nil eops means its plain-Gate run.
func (r *runner) measure(ctx context.Context, ls *liveSystem, cell Cell, eops []EnforceOps, round int, peers []int, prefix string) (*WorkloadRun, error) {
	var writes atomic.Int64
	batch := 1
	if perKey(cell.Workload) {
		batch = r.cfg.BatchSize
	}
	sp := opSpec{ops: ls.ops, keys: r.keys, choose: r.choosers[cell.Dist], conc: cell.Concurrency, batch: batch, writes: &writes}
	op, label := newOp(cell.Workload, sp), fmt.Sprintf("%s %s ×%d", cell.Workload, cell.Dist, cell.Concurrency)
	if cell.Workload == wlCache && eops == nil {
		op, label = newEnforceOp(wlCache, sp, true), label+" plain Gate"
	}
	sys := ls.sys
	leader, syncErr := -1, error(nil)
	var before []nodeSyncs
	if isWrite(cell.Workload) {
		if leader, syncErr = sys.Leader(ctx); syncErr == nil {
			before, syncErr = scrapeSyncs(ctx, sys, false)
		}
	}
	var n atomic.Int64
	r.prog.step(prefix, label, r.cfg.Warmup+r.cfg.Duration, &n)
	nodes, self := sys.PIDs(), os.Getpid()
	all := append(append([]int{self}, nodes...), peers...)
	cacheBefore, counted := sumCacheCounts(eops)
	cpuBefore := readCPU(all)
	saveProfiles := profileCell(ctx, r.cfg.PprofDir, sys, fmt.Sprintf("%s-r%d-%s", sys.Name(), round, label), r.cfg.Warmup, r.cfg.Duration)
	run := closedLoop(ctx, cell.Concurrency, r.cfg.Warmup, r.cfg.Duration, r.cfg.OpTimeout, &n, op)
	run.CPU = cpuUsage(cpuBefore, readCPU(all), nodes, peers, self, n.Load())
	if err := saveProfiles(); err != nil {
		r.prog.logf("%s %s: %v", prefix, label, err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if counted {
		after, _ := sumCacheCounts(eops)
		run.Cache = cacheRun(cacheBefore, after)
	}
	run.KeysPerOp = batch
	run.KeysPerSec = run.OpsPerSec * float64(batch)
	run.Writes = writes.Load()
	if isWrite(cell.Workload) {
		if syncErr == nil {
			var after []nodeSyncs
			if after, syncErr = scrapeSyncs(ctx, sys, true); syncErr == nil {
				run.Sync = syncStats(before, after, leader, run.Writes)
			}
		}
		if syncErr != nil {
			run.Sync = &SyncStats{Error: syncErr.Error()}
		}
	}
	for _, p := range sys.Procs() {
		p.samplePeak()
	}
	if err := sys.Check(); err != nil {
		return run, err
	}
	r.prog.logf("%s %-16s %s  p50 %7.2f  p99 %7.2f  p99.9 %7.2f ms  errors %d  node CPU %.0f µs/op%s%s%s", prefix,
		label, rateCell(run, cell.Workload), run.Latency.P50Ms, run.Latency.P99Ms, run.Latency.P999Ms,
		run.Errors, run.CPU.NodeCPUPerOpUs, syncNote(run.Sync), cacheNote(run.Cache), firstErrNote(run))
	return run, nil
}

func rateCell(run *WorkloadRun, wl string) string {
	if run.KeysPerOp > 1 {
		return fmt.Sprintf("%9.0f %s", run.KeysPerSec, unitOf(wl))
	}
	return fmt.Sprintf("%9.0f ops/s ", run.OpsPerSec)
}

func syncNote(s *SyncStats) string {
	switch {
	case s == nil:
		return ""
	case s.Error != "":
		return "  commits/fsync n/a"
	}
	return fmt.Sprintf("  %.1f writes per leader log fsync", s.WritesPerLogSync)
}
