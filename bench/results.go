package main

import (
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// Results is everything a run measured; results.json is this, encoded.
type Results struct {
	Tool          string    `json:"tool"`
	Started       time.Time `json:"started"`
	Finished      time.Time `json:"finished"`
	WallSeconds   float64   `json:"wall_seconds"`
	Complete      bool      `json:"complete"`
	Error         string    `json:"error,omitempty"`
	Host          HostInfo  `json:"host"`
	OptoutdCommit string    `json:"optoutd_commit"`
	BaseCommit    string    `json:"base_commit,omitempty"`
	// RatioOf says which ratio the summaries hold, e.g. "optoutd/etcd".
	RatioOf     string                       `json:"ratio_of,omitempty"`
	EtcdVersion string                       `json:"etcd_version"`
	Config      Config                       `json:"config"`
	Settings    map[string]map[string]string `json:"settings"`
	Rounds      []*RoundResult               `json:"rounds"`
	// Cells are the sweep's cells in run order; Summary holds each by
	// Cell.Key().
	Cells    []Cell                  `json:"cells"`
	Summary  map[string]*CellSummary `json:"summary"`
	Run      *RunSummary             `json:"run_summary,omitempty"`
	Failover *FailoverSummary        `json:"failover_summary,omitempty"`
}

// HostInfo describes the machine, which is shared and noisy.
type HostInfo struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpu_model"`
	GoVersion   string `json:"go_version"`
	Kernel      string `json:"kernel"`
	LoadAvgFrom string `json:"loadavg_start"`
	LoadAvgTo   string `json:"loadavg_end"`
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func hostInfo() HostInfo {
	h := HostInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Kernel: readTrim("/proc/sys/kernel/osrelease"), LoadAvgFrom: readTrim("/proc/loadavg")}
	for _, line := range strings.Split(readTrim("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			h.CPUModel = strings.TrimSpace(v)
			break
		}
	}
	return h
}

// CellSummary is one cell across rounds. Maps are by system.
type CellSummary struct {
	Cell
	OpsPerSec  map[string]Spread `json:"ops_per_sec"`
	KeysPerSec map[string]Spread `json:"keys_per_sec"`
	P50Ms      map[string]Spread `json:"p50_ms"`
	P99Ms      map[string]Spread `json:"p99_ms"`
	P999Ms     map[string]Spread `json:"p999_ms"`
	// CPUPerOpUs: the 3 nodes' CPU time per answered call.
	CPUPerOpUs map[string]Spread `json:"node_cpu_per_op_us"`
	// OtherCores: CPU used by other people's processes meanwhile.
	OtherCores map[string]Spread `json:"other_cores"`
	// WritesPerLogSync: write workloads' acknowledged writes per commit
	// of the leader's log ("commits per fsync").
	WritesPerLogSync map[string]Spread `json:"writes_per_log_sync,omitempty"`
	Errors           map[string]int64  `json:"errors"`
	Conflicts        map[string]int64  `json:"conflicts"`
	// Ratio is optoutd / the other system (Results.RatioOf), formed per
	// round, then summarised.
	Ratio    RatioSummary `json:"ratio"`
	PerRound []RoundRatio `json:"per_round"`
	// Cache: the cache workload, by system with a cache (enforce_results.go).
	Cache map[string]*CacheSummary `json:"cache,omitempty"`
}

// RatioSummary summarises per-round ratios optoutd / the other system. For
// throughput above 1 means optoutd is faster; for latencies and CPU above 1
// means optoutd is slower or costlier.
type RatioSummary struct {
	OpsPerSec Spread `json:"ops_per_sec"`
	P50       Spread `json:"p50"`
	P99       Spread `json:"p99"`
	P999      Spread `json:"p999"`
	CPUPerOp  Spread `json:"node_cpu_per_op"`
}

// RoundRatio is one round's ratios; nil when a side is missing.
type RoundRatio struct {
	Round     int      `json:"round"`
	OpsPerSec *float64 `json:"ops_per_sec"`
	P50       *float64 `json:"p50"`
	P99       *float64 `json:"p99"`
	P999      *float64 `json:"p999"`
	CPUPerOp  *float64 `json:"node_cpu_per_op"`
}

// RunSummary is the per-run figures across rounds, by system.
type RunSummary struct {
	// PeakRSSMiB: the largest node's peak RSS in each round.
	PeakRSSMiB            map[string]Spread `json:"peak_rss_mib"`
	BytesPerRecord        map[string]Spread `json:"bytes_per_record"`
	HistoryBytesPerRecord map[string]Spread `json:"history_bytes_per_record"`
	// Ratios a / b, per round.
	RatioRSS            Spread `json:"ratio_peak_rss"`
	RatioBytesPerRecord Spread `json:"ratio_bytes_per_record"`
	// Fsync floor of the machine over rounds.
	FsyncP50Ms Spread `json:"fsync_floor_p50_ms"`
	FsyncP99Ms Spread `json:"fsync_floor_p99_ms"`
}

// FailoverSummary: unavailability after kill -9 of the leader.
type FailoverSummary struct {
	// Over every sample of each system.
	WriteMs map[string]Spread `json:"write_unavailable_ms"`
	ReadMs  map[string]Spread `json:"read_unavailable_ms"`
	// ElectedMs: until a survivor first reported itself leader.
	ElectedMs map[string]Spread `json:"leader_elected_ms"`
	// Per round: median(optoutd samples) / median(the other's samples).
	RatioWrite Spread          `json:"ratio_write"`
	RatioRead  Spread          `json:"ratio_read"`
	PerRound   []FailoverRatio `json:"per_round"`
	TimedOut   map[string]int  `json:"timed_out"`
}

// FailoverRatio is one round's failover ratios; nil when a side is missing.
type FailoverRatio struct {
	Round int      `json:"round"`
	Write *float64 `json:"write"`
	Read  *float64 `json:"read"`
}

func finite(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// cellRun is system sys's run of cell key in round rr, or nil.
func cellRun(rr *RoundResult, key, sys string) *WorkloadRun {
	for _, c := range rr.Cells {
		if c.Key() == key {
			return c.Runs[sys]
		}
	}
	return nil
}

// perRound returns f of each round's run of the cell on sys (NaN where
// missing or empty).
func perRound(rounds []*RoundResult, key, sys string, f func(*WorkloadRun) float64) []float64 {
	out := make([]float64, len(rounds))
	for i, rr := range rounds {
		out[i] = math.NaN()
		if run := cellRun(rr, key, sys); run != nil && run.Ops > 0 {
			out[i] = f(run)
		}
	}
	return out
}

// sides are the two systems of the tables, ratio = a / b: optoutd and the
// system it is compared with, or optoutd and etcd when only one ran.
func (res *Results) sides() (a, b string) {
	if a, b, ok := res.Config.pair(); ok {
		return a, b
	}
	return sysOptoutd, sysEtcd
}

func (res *Results) summarize() {
	res.Cells = planCells(res.Config)
	res.Summary = map[string]*CellSummary{}
	a, b, ok := res.Config.pair()
	if ok {
		res.RatioOf = a + "/" + b
	} else {
		a, b = res.sides()
	}
	for _, cell := range res.Cells {
		res.Summary[cell.Key()] = summarizeCell(res.Rounds, cell, res.Config.Systems, a, b)
	}
	res.Run = summarizeRun(res.Rounds, res.Config.Systems, a, b)
	if res.Config.has(wlFailover) {
		res.Failover = summarizeFailover(res.Rounds, res.Config.Systems, a, b)
	}
}

var (
	opsf  = func(r *WorkloadRun) float64 { return r.OpsPerSec }
	keysf = func(r *WorkloadRun) float64 { return r.KeysPerSec }
	p50f  = func(r *WorkloadRun) float64 { return r.Latency.P50Ms }
	p99f  = func(r *WorkloadRun) float64 { return r.Latency.P99Ms }
	p999f = func(r *WorkloadRun) float64 { return r.Latency.P999Ms }
	cpuf  = func(r *WorkloadRun) float64 { return r.CPU.NodeCPUPerOpUs }
	wplsf = func(r *WorkloadRun) float64 {
		if r.Sync == nil || r.Sync.Error != "" || r.Sync.LeaderLogSyncs == 0 {
			return math.NaN()
		}
		return r.Sync.WritesPerLogSync
	}
)

// summarizeCell: ratios are a / b.
func summarizeCell(rounds []*RoundResult, cell Cell, systems []string, a, b string) *CellSummary {
	key := cell.Key()
	cs := &CellSummary{Cell: cell, OpsPerSec: map[string]Spread{}, KeysPerSec: map[string]Spread{}, P50Ms: map[string]Spread{},
		P99Ms: map[string]Spread{}, P999Ms: map[string]Spread{}, CPUPerOpUs: map[string]Spread{}, OtherCores: map[string]Spread{},
		Errors: map[string]int64{}, Conflicts: map[string]int64{}}
	if isWrite(cell.Workload) {
		cs.WritesPerLogSync = map[string]Spread{}
	}
	for _, s := range systems {
		cs.OpsPerSec[s] = summarize(perRound(rounds, key, s, opsf))
		cs.KeysPerSec[s] = summarize(perRound(rounds, key, s, keysf))
		cs.P50Ms[s] = summarize(perRound(rounds, key, s, p50f))
		cs.P99Ms[s] = summarize(perRound(rounds, key, s, p99f))
		cs.P999Ms[s] = summarize(perRound(rounds, key, s, p999f))
		cs.CPUPerOpUs[s] = summarize(perRound(rounds, key, s, cpuf))
		cs.OtherCores[s] = summarize(perRound(rounds, key, s, func(r *WorkloadRun) float64 { return r.CPU.OtherCores }))
		if cs.WritesPerLogSync != nil {
			cs.WritesPerLogSync[s] = summarize(perRound(rounds, key, s, wplsf))
		}
		for _, rr := range rounds {
			if run := cellRun(rr, key, s); run != nil {
				cs.Errors[s] += run.Errors
				cs.Conflicts[s] += run.Conflicts
			}
		}
	}
	ratio := func(f func(*WorkloadRun) float64) []float64 {
		return ratios(perRound(rounds, key, a, f), perRound(rounds, key, b, f))
	}
	ro, r50, r99, r999, rc := ratio(opsf), ratio(p50f), ratio(p99f), ratio(p999f), ratio(cpuf)
	cs.Ratio = RatioSummary{OpsPerSec: summarize(ro), P50: summarize(r50), P99: summarize(r99), P999: summarize(r999), CPUPerOp: summarize(rc)}
	for i, rr := range rounds {
		cs.PerRound = append(cs.PerRound, RoundRatio{Round: rr.Round, OpsPerSec: finite(ro[i]), P50: finite(r50[i]), P99: finite(r99[i]),
			P999: finite(r999[i]), CPUPerOp: finite(rc[i])})
	}
	if cell.Workload == wlCache {
		cs.Cache = summarizeCache(rounds, key, systems)
	}
	return cs
}

// perRoundSystem returns f of each round's SystemRound of sys (NaN where
// missing).
func perRoundSystem(rounds []*RoundResult, sys string, f func(*SystemRound) float64) []float64 {
	out := make([]float64, len(rounds))
	for i, rr := range rounds {
		out[i] = math.NaN()
		if sr := rr.Systems[sys]; sr != nil {
			out[i] = f(sr)
		}
	}
	return out
}

func peakMiB(sr *SystemRound) float64 {
	var peak int64
	for _, v := range sr.PeakRSSBytes {
		peak = max(peak, v)
	}
	if peak == 0 {
		return math.NaN()
	}
	return float64(peak) / (1 << 20)
}

func bytesPerRecord(sr *SystemRound) float64 {
	if sr.Disk == nil || sr.Disk.BytesPerRecord == 0 {
		return math.NaN()
	}
	return sr.Disk.BytesPerRecord
}

func summarizeRun(rounds []*RoundResult, systems []string, a, b string) *RunSummary {
	rs := &RunSummary{PeakRSSMiB: map[string]Spread{}, BytesPerRecord: map[string]Spread{}, HistoryBytesPerRecord: map[string]Spread{}}
	hist := func(sr *SystemRound) float64 {
		if sr.Disk == nil || sr.Disk.BytesPerRecord == 0 {
			return math.NaN()
		}
		return sr.Disk.HistoryBytesPerRecord
	}
	for _, s := range systems {
		rs.PeakRSSMiB[s] = summarize(perRoundSystem(rounds, s, peakMiB))
		rs.BytesPerRecord[s] = summarize(perRoundSystem(rounds, s, bytesPerRecord))
		rs.HistoryBytesPerRecord[s] = summarize(perRoundSystem(rounds, s, hist))
	}
	rs.RatioRSS = summarize(ratios(perRoundSystem(rounds, a, peakMiB), perRoundSystem(rounds, b, peakMiB)))
	rs.RatioBytesPerRecord = summarize(ratios(perRoundSystem(rounds, a, bytesPerRecord), perRoundSystem(rounds, b, bytesPerRecord)))
	var p50, p99 []float64
	for _, rr := range rounds {
		if rr.FsyncFloor.Samples > 0 {
			p50, p99 = append(p50, rr.FsyncFloor.P50Ms), append(p99, rr.FsyncFloor.P99Ms)
		}
	}
	rs.FsyncP50Ms, rs.FsyncP99Ms = summarize(p50), summarize(p99)
	return rs
}

// failoverValues returns the samples of sys in one round (or all rounds).
func failoverValues(rounds []*RoundResult, sys string, f func(FailoverSample) float64) []float64 {
	var out []float64
	for _, rr := range rounds {
		if sr := rr.Systems[sys]; sr != nil {
			for _, s := range sr.Failover {
				out = append(out, f(s))
			}
		}
	}
	return out
}

// summarizeFailover: ratios are a / b.
func summarizeFailover(rounds []*RoundResult, systems []string, a, b string) *FailoverSummary {
	fs := &FailoverSummary{WriteMs: map[string]Spread{}, ReadMs: map[string]Spread{}, ElectedMs: map[string]Spread{}, TimedOut: map[string]int{}}
	wf := func(s FailoverSample) float64 { return s.WriteUnavailableMs }
	rf := func(s FailoverSample) float64 { return s.ReadUnavailableMs }
	for _, s := range systems {
		fs.WriteMs[s] = summarize(failoverValues(rounds, s, wf))
		fs.ReadMs[s] = summarize(failoverValues(rounds, s, rf))
		fs.ElectedMs[s] = summarize(failoverValues(rounds, s, func(s FailoverSample) float64 { return s.LeaderElectedMs }))
		for _, v := range failoverValues(rounds, s, func(s FailoverSample) float64 {
			if s.TimedOut {
				return 1
			}
			return 0
		}) {
			fs.TimedOut[s] += int(v)
		}
	}
	var rw, rr []float64
	for _, round := range rounds {
		one := []*RoundResult{round}
		ow := summarize(failoverValues(one, a, wf))
		ew := summarize(failoverValues(one, b, wf))
		or := summarize(failoverValues(one, a, rf))
		er := summarize(failoverValues(one, b, rf))
		w, r := ratioOfMedians(ow, ew), ratioOfMedians(or, er)
		rw, rr = append(rw, w), append(rr, r)
		fs.PerRound = append(fs.PerRound, FailoverRatio{Round: round.Round, Write: finite(w), Read: finite(r)})
	}
	fs.RatioWrite, fs.RatioRead = summarize(rw), summarize(rr)
	return fs
}

func ratioOfMedians(a, b Spread) float64 {
	if a.N == 0 || b.N == 0 || b.Median == 0 {
		return math.NaN()
	}
	return a.Median / b.Median
}
