package main

import (
	"math"
	"os"
	"runtime"
	"slices"
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
	Summary     map[string]*WorkloadSummary  `json:"summary"`
	// LatencyCDF: workload -> system -> (ms, fraction) points of every
	// round's samples merged.
	LatencyCDF map[string]map[string][][2]float64 `json:"latency_cdf_all_rounds"`
	Failover   *FailoverSummary                   `json:"failover_summary,omitempty"`
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

// WorkloadSummary is one throughput workload across rounds.
type WorkloadSummary struct {
	OpsPerSec map[string]Spread `json:"ops_per_sec"`
	P50Ms     map[string]Spread `json:"p50_ms"`
	P99Ms     map[string]Spread `json:"p99_ms"`
	// CPUPerOpUs: the 3 nodes' CPU time per successful request.
	CPUPerOpUs map[string]Spread `json:"node_cpu_per_op_us"`
	// OtherCores: CPU used by other people's processes during the run.
	OtherCores map[string]Spread `json:"other_cores"`
	// Ratio is optoutd / the other system (Results.RatioOf), formed per
	// round, then summarised.
	Ratio    RatioSummary `json:"ratio"`
	PerRound []RoundRatio `json:"per_round"`
}

// RatioSummary summarises per-round ratios optoutd / the other system. For
// ops/s above 1 means optoutd is faster; for latencies above 1 means
// optoutd is slower.
type RatioSummary struct {
	OpsPerSec Spread `json:"ops_per_sec"`
	P50       Spread `json:"p50"`
	P99       Spread `json:"p99"`
	CPUPerOp  Spread `json:"node_cpu_per_op"`
}

// RoundRatio is one round's ratios; nil when a side is missing.
type RoundRatio struct {
	Round     int      `json:"round"`
	OpsPerSec *float64 `json:"ops_per_sec"`
	P50       *float64 `json:"p50"`
	P99       *float64 `json:"p99"`
	CPUPerOp  *float64 `json:"node_cpu_per_op"`
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

// perRound returns f of each round's run of wl on sys (NaN where missing).
func perRound(rounds []*RoundResult, sys, wl string, f func(*WorkloadRun) float64) []float64 {
	out := make([]float64, len(rounds))
	for i, rr := range rounds {
		out[i] = math.NaN()
		if sr := rr.Systems[sys]; sr != nil {
			if run := sr.Workloads[wl]; run != nil && run.Ops > 0 {
				out[i] = f(run)
			}
		}
	}
	return out
}

// mergeCDFs computes LatencyCDF from the in-memory samples; a Results
// read back from results.json keeps the one it had.
func (res *Results) mergeCDFs() {
	out := map[string]map[string][][2]float64{}
	for _, wl := range []string{wlReads, wlWrites, wlCAS} {
		for _, sys := range res.Config.Systems {
			var all []time.Duration
			for _, rr := range res.Rounds {
				if r := runOf(rr, sys, wl); r != nil {
					all = append(all, r.samples...)
				}
			}
			if len(all) == 0 {
				continue
			}
			slices.Sort(all)
			if out[wl] == nil {
				out[wl] = map[string][][2]float64{}
			}
			out[wl][sys] = cdfPoints(all, 200)
		}
	}
	if len(out) > 0 {
		res.LatencyCDF = out
	}
}

func (res *Results) summarize() {
	res.Summary = map[string]*WorkloadSummary{}
	// Ratios are optoutd / the other; with one system they are all NaN
	// (N == 0), as before.
	a, b, ok := res.Config.pair()
	if ok {
		res.RatioOf = a + "/" + b
	} else {
		a, b = sysOptoutd, sysEtcd
	}
	opsf := func(r *WorkloadRun) float64 { return r.OpsPerSec }
	p50f := func(r *WorkloadRun) float64 { return r.Latency.P50Ms }
	p99f := func(r *WorkloadRun) float64 { return r.Latency.P99Ms }
	cpuf := func(r *WorkloadRun) float64 { return r.CPU.NodeCPUPerOpUs }
	otherf := func(r *WorkloadRun) float64 { return r.CPU.OtherCores }
	for _, wl := range []string{wlReads, wlWrites, wlCAS} {
		if !res.Config.has(wl) {
			continue
		}
		ws := &WorkloadSummary{OpsPerSec: map[string]Spread{}, P50Ms: map[string]Spread{}, P99Ms: map[string]Spread{},
			CPUPerOpUs: map[string]Spread{}, OtherCores: map[string]Spread{}}
		for _, s := range res.Config.Systems {
			ws.OpsPerSec[s] = summarize(perRound(res.Rounds, s, wl, opsf))
			ws.P50Ms[s] = summarize(perRound(res.Rounds, s, wl, p50f))
			ws.P99Ms[s] = summarize(perRound(res.Rounds, s, wl, p99f))
			ws.CPUPerOpUs[s] = summarize(perRound(res.Rounds, s, wl, cpuf))
			ws.OtherCores[s] = summarize(perRound(res.Rounds, s, wl, otherf))
		}
		rc := ratios(perRound(res.Rounds, a, wl, cpuf), perRound(res.Rounds, b, wl, cpuf))
		ro := ratios(perRound(res.Rounds, a, wl, opsf), perRound(res.Rounds, b, wl, opsf))
		r50 := ratios(perRound(res.Rounds, a, wl, p50f), perRound(res.Rounds, b, wl, p50f))
		r99 := ratios(perRound(res.Rounds, a, wl, p99f), perRound(res.Rounds, b, wl, p99f))
		ws.Ratio = RatioSummary{OpsPerSec: summarize(ro), P50: summarize(r50), P99: summarize(r99), CPUPerOp: summarize(rc)}
		for i, rr := range res.Rounds {
			ws.PerRound = append(ws.PerRound, RoundRatio{Round: rr.Round, OpsPerSec: finite(ro[i]), P50: finite(r50[i]), P99: finite(r99[i]), CPUPerOp: finite(rc[i])})
		}
		res.Summary[wl] = ws
	}
	if res.Config.has(wlFailover) {
		res.Failover = summarizeFailover(res.Rounds, res.Config.Systems, a, b)
	}
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
