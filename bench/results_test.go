package main

import (
	"strings"
	"testing"
)

// fakeRun builds a WorkloadRun with the given ops/s and p50/p99.
func fakeRun(ops, p50, p99 float64) *WorkloadRun {
	return &WorkloadRun{Ops: int64(ops), OpsPerSec: ops, KeysPerSec: ops, KeysPerOp: 1, Latency: LatencySummary{P50Ms: p50, P99Ms: p99, P999Ms: 2 * p99}}
}

// fakeResults has one round per element of runs; runs[i][sys] is that
// system's run of every cell of cfg in round i+1.
func fakeResults(cfg Config, runs []map[string]*WorkloadRun) *Results {
	res := &Results{Config: cfg, Complete: true, OptoutdCommit: "aaaa"}
	for i, byS := range runs {
		rr := &RoundResult{Round: i + 1, Order: roundOrder(cfg.Systems, i+1), Systems: map[string]*SystemRound{}}
		for k, cell := range planCells(cfg) {
			cr := &CellRun{Cell: cell, Order: cellOrder(cfg.Systems, i+1, k), Runs: map[string]*WorkloadRun{}}
			for s, r := range byS {
				cp := *r
				cr.Runs[s] = &cp
			}
			rr.Cells = append(rr.Cells, cr)
		}
		for _, s := range cfg.Systems {
			rr.Systems[s] = &SystemRound{}
		}
		res.Rounds = append(res.Rounds, rr)
	}
	return res
}

func TestResultsRatiosPerRound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workloads = []string{wlSet, wlFailover}
	cfg.Dists = []string{distUniform}
	cfg.Concurrency = []int{16}
	optoutd := [][3]float64{{1000, 10, 40}, {1200, 8, 30}, {900, 12, 60}}
	etcd := [][3]float64{{2000, 5, 20}, {2000, 4, 20}, {1800, 6, 20}}
	var runs []map[string]*WorkloadRun
	for i := range optoutd {
		runs = append(runs, map[string]*WorkloadRun{sysOptoutd: fakeRun(optoutd[i][0], optoutd[i][1], optoutd[i][2]), sysEtcd: fakeRun(etcd[i][0], etcd[i][1], etcd[i][2])})
	}
	res := fakeResults(cfg, runs)
	fo := [][]float64{{1000, 1200, 800}, {900}, {}}
	fe := [][]float64{{500, 400, 600}, {600}, {700}}
	for i, rr := range res.Rounds {
		for _, v := range fo[i] {
			rr.Systems[sysOptoutd].Failover = append(rr.Systems[sysOptoutd].Failover, FailoverSample{WriteUnavailableMs: v, ReadUnavailableMs: v / 2})
		}
		for _, v := range fe[i] {
			rr.Systems[sysEtcd].Failover = append(rr.Systems[sysEtcd].Failover, FailoverSample{WriteUnavailableMs: v, ReadUnavailableMs: v})
		}
		rr.Systems[sysOptoutd].PeakRSSBytes = map[string]int64{"n1": 100 << 20, "n2": 150 << 20}
		rr.Systems[sysEtcd].PeakRSSBytes = map[string]int64{"e1": 50 << 20}
		rr.Systems[sysOptoutd].Disk = &DiskUsage{BytesPerRecord: float64(3000 + 100*i), HistoryBytesPerRecord: 1000}
		rr.Systems[sysEtcd].Disk = &DiskUsage{BytesPerRecord: 1500}
	}
	res.summarize()

	if len(res.Summary) != 1 {
		t.Fatalf("summarised %d cells, want 1 (set/uniform/16): %v", len(res.Summary), res.Cells)
	}
	cs := res.Summary["set/uniform/16"]
	// ops/s ratios per round: 1000/2000, 1200/2000, 900/1800.
	if want := (Spread{N: 3, Median: 0.5, Min: 0.5, Max: 0.6, Q1: 0.5, Q3: 0.55}); !spreadEq(cs.Ratio.OpsPerSec, want) {
		t.Errorf("ops/s ratio = %+v, want %+v", cs.Ratio.OpsPerSec, want)
	}
	// p99 ratios: 2, 1.5, 3; p99.9 the same (2 × p99 on both sides).
	if want := (Spread{N: 3, Median: 2, Min: 1.5, Max: 3, Q1: 1.75, Q3: 2.5}); !spreadEq(cs.Ratio.P99, want) || !spreadEq(cs.Ratio.P999, want) {
		t.Errorf("p99 ratio = %+v, p99.9 %+v, want %+v", cs.Ratio.P99, cs.Ratio.P999, want)
	}
	if got := cs.OpsPerSec[sysEtcd]; got.Median != 2000 || got.Min != 1800 {
		t.Errorf("etcd ops/s = %+v", got)
	}
	if got := res.Run.RatioRSS; got.N != 3 || got.Median != 3 {
		t.Errorf("peak RSS ratio = %+v, want 3 (150 MiB / 50 MiB) in each round", got)
	}
	if got := res.Run.BytesPerRecord[sysOptoutd]; got.Median != 3100 || got.Max != 3200 {
		t.Errorf("optoutd bytes per record = %+v", got)
	}
	if got := res.Run.RatioBytesPerRecord.Median; got < 2.066 || got > 2.067 {
		t.Errorf("bytes per record ratio median = %v, want 3100/1500", got)
	}

	f := res.Failover
	// Round medians: optoutd 1000 and 900, etcd 500, 600 and 700; round 3
	// has no optoutd sample, so only two ratios: 2 and 1.5.
	if want := (Spread{N: 2, Median: 1.75, Min: 1.5, Max: 2, Q1: 1.625, Q3: 1.875}); !spreadEq(f.RatioWrite, want) {
		t.Errorf("failover write ratio = %+v, want %+v", f.RatioWrite, want)
	}
	if f.PerRound[2].Write != nil {
		t.Errorf("round 3 ratio = %v, want nil", *f.PerRound[2].Write)
	}
	if want := (Spread{N: 4, Median: 950, Min: 800, Max: 1200, Q1: 875, Q3: 1050}); !spreadEq(f.WriteMs[sysOptoutd], want) {
		t.Errorf("optoutd write ms = %+v, want %+v", f.WriteMs[sysOptoutd], want)
	}
	if f.RatioRead.Median != 0.875 {
		t.Errorf("failover read ratio median = %v, want 0.875", f.RatioRead.Median)
	}
}

// A cell one system did not run (it failed) has no ratio for that round.
func TestResultsMissingRun(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workloads, cfg.Dists, cfg.Concurrency = []string{wlCheck}, []string{distZipf}, []int{1, 64}
	res := fakeResults(cfg, []map[string]*WorkloadRun{
		{sysOptoutd: fakeRun(100, 1, 2), sysEtcd: fakeRun(50, 1, 1)},
		{sysOptoutd: fakeRun(100, 1, 2)},
	})
	res.summarize()
	cs := res.Summary["check/zipf/64"]
	if cs.Ratio.OpsPerSec.N != 1 || cs.Ratio.OpsPerSec.Median != 2 || cs.PerRound[1].OpsPerSec != nil {
		t.Errorf("ratio = %+v, round 2 %v; want 2 from round 1 only", cs.Ratio.OpsPerSec, cs.PerRound[1].OpsPerSec)
	}
}

// With optoutd-base instead of etcd, ratios are optoutd / optoutd-base
// and the report names both.
func TestResultsRatiosAgainstBase(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workloads, cfg.Dists, cfg.Concurrency = []string{wlCheck, wlSet}, []string{distUniform}, []int{1, 16}
	cfg.Systems = []string{sysOptoutd, sysOptoutdBase}
	cfg.BaseRev = "bench-pre-domain"
	head := []float64{900, 1000, 1100}
	var runs []map[string]*WorkloadRun
	for i := range head {
		runs = append(runs, map[string]*WorkloadRun{sysOptoutd: fakeRun(head[i], 2, 8), sysOptoutdBase: fakeRun(1000, 1, 4)})
	}
	res := fakeResults(cfg, runs)
	res.BaseCommit = "bbbb"
	res.summarize()
	if res.RatioOf != "optoutd/optoutd-base" {
		t.Errorf("RatioOf = %q", res.RatioOf)
	}
	cs := res.Summary["check/uniform/16"]
	if want := (Spread{N: 3, Median: 1, Min: 0.9, Max: 1.1, Q1: 0.95, Q3: 1.05}); !spreadEq(cs.Ratio.OpsPerSec, want) {
		t.Errorf("check ops/s ratio = %+v, want %+v", cs.Ratio.OpsPerSec, want)
	}
	if got := cs.Ratio.P50; got.Median != 2 || got.N != 3 {
		t.Errorf("check p50 ratio = %+v, want 2 in each of 3 rounds", got)
	}
	var md strings.Builder
	writeMarkdown(&md, res, nil)
	for _, want := range []string{"# optoutd vs optoutd-base", "optoutd: aaaa (`--optoutd-rev HEAD`); optoutd-base: bbbb (`--base-rev bench-pre-domain`)",
		"| workload | keys | 1 client | 16 clients |", "| check | uniform | 1.00× [0.90–1.10] | 1.00× [0.90–1.10] |",
		"| set | uniform | 1.00× [0.90–1.10] | 1.00× [0.90–1.10] |",
		"| check/uniform/16 | 1,000 [900–1,100] / 1,000 [1,000–1,000] | **1.00× [0.90–1.10]** |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md.String())
		}
	}
	if strings.Contains(md.String(), "etcd") {
		t.Errorf("summary.md mentions etcd:\n%s", md.String())
	}
	if line := oneLine(res, "dir"); !strings.HasPrefix(line, "optoutd vs optoutd-base (throughput ratio optoutd/optoutd-base") ||
		!strings.Contains(line, "check/uniform ×1 1.00× [0.90–1.10], ×16 1.00× [0.90–1.10]") {
		t.Errorf("oneLine = %q", line)
	}
	var bt strings.Builder
	writeBenchfmt(&bt, res)
	if !strings.Contains(bt.String(), "BenchmarkCheck/dist=uniform/clients=16/system=optoutd-base\t1000\t") {
		t.Errorf("bench.txt:\n%s", bt.String())
	}
}
