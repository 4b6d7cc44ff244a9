package main

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeEnforce is a fakeOps that also takes the enforcement requests.
type fakeEnforce struct {
	fakeOps
	reports  [][]string
	prepared []string
	cache    *CacheCounts
}

func (f *fakeEnforce) Prepare(_ context.Context, wl string, _ []string) error {
	f.note("prepare")
	f.prepared = append(f.prepared, wl)
	return nil
}
func (f *fakeEnforce) Gate(context.Context, string) error        { f.note("gate"); return nil }
func (f *fakeEnforce) GateReceipt(context.Context, string) error { f.note("gate-receipt"); return nil }
func (f *fakeEnforce) CachedGate(context.Context, string) error  { f.note("cached"); return nil }
func (f *fakeEnforce) Fence(context.Context, string) error       { f.note("fence"); return nil }
func (f *fakeEnforce) Report(_ context.Context, s []string) error {
	f.note("report")
	f.mu.Lock()
	f.reports = append(f.reports, slices.Clone(s))
	f.mu.Unlock()
	return nil
}
func (f *fakeEnforce) CacheCounts() (CacheCounts, bool) {
	if f.cache == nil {
		return CacheCounts{}, false
	}
	return *f.cache, true
}

func runEnforce(t *testing.T, wl string, plain bool, o Ops, n int) (*atomic.Int64, error) {
	t.Helper()
	var writes atomic.Int64
	sp := opSpec{ops: func(int) Ops { return o }, keys: subjects(100), choose: newChooser(distZipf, 100, 0.99), conc: 2, batch: 30, writes: &writes}
	op := newOp(wl, sp)
	if plain {
		op = newEnforceOp(wl, sp, true)
	}
	for i := 0; i < n; i++ {
		if err := op(context.Background(), i%2, uint64(i)); err != nil {
			return &writes, err
		}
	}
	return &writes, nil
}

func TestEnforcementWorkloadsSendTheirRequests(t *testing.T) {
	for _, tt := range []struct {
		wl    string
		plain bool
		call  string
	}{
		{wlGate, false, "gate"}, {wlGateReceipt, false, "gate-receipt"}, {wlCache, false, "cached"},
		{wlCache, true, "gate"}, {wlFence, false, "fence"}, {wlReport, false, "report"}, {wlReportBatch, false, "report"},
	} {
		f := &fakeEnforce{}
		w, err := runEnforce(t, tt.wl, tt.plain, f, 6)
		if err != nil {
			t.Fatalf("%s: %v", tt.wl, err)
		}
		if f.calls[tt.call] != 6 || len(f.calls) != 1 {
			t.Errorf("%s (plain %v): calls %v, want 6 of %s", tt.wl, tt.plain, f.calls, tt.call)
		}
		if want := map[bool]int64{true: 6}[isWrite(tt.wl)]; w.Load() != want {
			t.Errorf("%s: %d writes counted, want %d", tt.wl, w.Load(), want)
		}
	}
	f := &fakeEnforce{}
	if _, err := runEnforce(t, wlReportBatch, false, f, 20); err != nil {
		t.Fatal(err)
	}
	for _, r := range f.reports {
		if len(r) != 30 || len(dedup(r)) != 30 {
			t.Fatalf("report-batch sent %d subjects, %d distinct; want 30 distinct", len(r), len(dedup(r)))
		}
	}
	f = &fakeEnforce{}
	if _, err := runEnforce(t, wlReport, false, f, 3); err != nil || len(f.reports) != 3 || len(f.reports[0]) != 1 {
		t.Errorf("report: %v, sent %v; want 3 calls of 1 subject", err, f.reports)
	}
	// A system without the enforcement requests is an error, not a panic.
	if _, err := runEnforce(t, wlFence, false, &fakeOps{}, 1); err == nil || !strings.Contains(err.Error(), "no enforcement workloads") {
		t.Errorf("fence on plain Ops: err = %v", err)
	}
}

func dedup(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

func TestDistinctKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[int]bool{}
	for _, tt := range []struct {
		dist    string
		keys, n int
	}{{distUniform, 1000, 100}, {distZipf, 1000, 100}, {distZipf, 100, 100}, {distZipf, 1, 1}, {distUniform, 5, 5}} {
		c := newChooser(tt.dist, tt.keys, 0.99)
		for rep := 0; rep < 20; rep++ {
			got := distinctKeys(rng, c, tt.keys, tt.n, seen)
			if len(got) != tt.n {
				t.Fatalf("%s %d of %d: %d keys", tt.dist, tt.n, tt.keys, len(got))
			}
			s := slices.Clone(got)
			slices.Sort(s)
			if len(slices.Compact(s)) != tt.n || s[0] < 0 || s[len(s)-1] >= tt.keys {
				t.Fatalf("%s %d of %d: %v not distinct or out of range", tt.dist, tt.n, tt.keys, got)
			}
			if len(seen) != 0 {
				t.Fatalf("seen left with %d entries", len(seen))
			}
		}
	}
}

func TestCacheRunAndCounts(t *testing.T) {
	r := cacheRun(CacheCounts{Hits: 10, Misses: 5, Rounds: 2}, CacheCounts{Hits: 100, Misses: 5, Refusals: 10, Rounds: 12})
	if r.Hits != 90 || r.Misses != 0 || r.Refusals != 10 || r.HitRate != 0.9 || r.LookupsPerRound != 9 {
		t.Errorf("cacheRun = %+v, want 90 hits of 100 lookups, 9 per round", r)
	}
	if z := cacheRun(CacheCounts{}, CacheCounts{}); z.HitRate != 0 || z.LookupsPerRound != 0 {
		t.Errorf("no lookups: %+v", z)
	}
	withCache := &fakeEnforce{cache: &CacheCounts{Hits: 3, Rounds: 1}}
	ops := []Ops{withCache, withCache, &fakeEnforce{}, &fakeEnforce{cache: &CacheCounts{Hits: 4, Misses: 1}}}
	eops, err := distinctEnforcers(func(w int) Ops { return ops[w%len(ops)] }, 8)
	if err != nil || len(eops) != 3 {
		t.Fatalf("distinctEnforcers = %d, %v; want 3 distinct", len(eops), err)
	}
	if sum, ok := sumCacheCounts(eops); !ok || sum != (CacheCounts{Hits: 7, Misses: 1, Rounds: 1}) {
		t.Errorf("sumCacheCounts = %+v, %v", sum, ok)
	}
	if _, ok := sumCacheCounts(eops[2:2]); ok {
		t.Error("no clients, yet a cache")
	}
	if _, err := distinctEnforcers(func(int) Ops { return &fakeOps{} }, 2); err == nil {
		t.Error("distinctEnforcers accepted Ops without enforcement requests")
	}
}

func TestTryN(t *testing.T) {
	n := 0
	err := tryN(context.Background(), 3, time.Second, func(context.Context) error { n++; return errors.New("down") })
	if n != 3 || err == nil || !strings.Contains(err.Error(), "down") {
		t.Errorf("3 failures: %d calls, %v", n, err)
	}
	n = 0
	err = tryN(context.Background(), 5, time.Second, func(context.Context) error { n++; return errNotAllowed })
	if n != 1 || !errors.Is(err, errNotAllowed) {
		t.Errorf("not allowed is retried: %d calls, %v", n, err)
	}
	n = 0
	if err := tryN(context.Background(), 5, time.Second, func(context.Context) error {
		if n++; n < 2 {
			return errors.New("once")
		}
		return nil
	}); err != nil || n != 2 {
		t.Errorf("a second attempt that succeeds: %d calls, %v", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tryN(ctx, 5, time.Second, func(context.Context) error { t.Error("called"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestWorkloadNames(t *testing.T) {
	if benchName(wlGateReceipt) != "GateReceipt" || benchName(wlReportBatch) != "ReportBatch" || benchName(wlCheck) != "Check" {
		t.Errorf("benchName: %s %s %s", benchName(wlGateReceipt), benchName(wlReportBatch), benchName(wlCheck))
	}
	if unitOf(wlBatch) != "keys/s" || unitOf(wlReportBatch) != "reports/s" || unitOf(wlGate) != "calls/s" {
		t.Error("unitOf")
	}
	if !isWrite(wlReport) || !isWrite(wlReportBatch) || isWrite(wlFence) || isWrite(wlCache) {
		t.Error("isWrite: reports are writes, fence and cache are not")
	}
	if !perKey(wlReportBatch) || perKey(wlReport) {
		t.Error("perKey")
	}
	for _, wl := range allWorkloads {
		if wl != wlFailover && !slices.Contains(throughputWorkloads, wl) {
			t.Errorf("%s is not a throughput workload", wl)
		}
	}
	if len(throughputWorkloads) != len(allWorkloads)-1 {
		t.Errorf("throughputWorkloads %v", throughputWorkloads)
	}
	// The old workloads keep their random streams.
	if streamOf(wlCheck) != 10 || streamOf(wlMixed) != 14 {
		t.Errorf("streams moved: check %d, mixed %d", streamOf(wlCheck), streamOf(wlMixed))
	}
}

func TestEnforcementFlags(t *testing.T) {
	repo := fakeRepo(t)
	c, err := parseFlags([]string{"--repo", repo, "--workloads", "check,enforcement"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]string{wlCheck}, enforcementWorkloads...); !slices.Equal(c.Workloads, want) {
		t.Errorf("check,enforcement = %v, want %v", c.Workloads, want)
	}
	if c, err = parseFlags([]string{"--repo", repo, "--workloads", "all"}, io.Discard); err != nil || !slices.Equal(c.Workloads, allWorkloads) {
		t.Errorf("all = %v, %v", c.Workloads, err)
	}
	if _, err := parseFlags([]string{"--repo", repo, "--workloads", "gate,enforcement"}, io.Discard); err == nil || !strings.Contains(err.Error(), `--workloads: "gate" named twice`) {
		t.Errorf("gate,enforcement: err = %v", err)
	}
	d, err := parseFlags([]string{"--repo", repo}, io.Discard)
	if err != nil || !slices.Equal(d.Workloads, defaultWorkloads) || d.has(wlGate) {
		t.Errorf("defaults: %v, %v; want the issue-11 sweep only", d.Workloads, err)
	}
	q, err := parseFlags([]string{"--repo", repo, "--quick"}, io.Discard)
	if err != nil || !slices.Equal(q.Workloads, allWorkloads) {
		t.Errorf("--quick: %v, %v; want every workload", q.Workloads, err)
	}
	if q, err = parseFlags([]string{"--repo", repo, "--quick", "--workloads", "fence"}, io.Discard); err != nil || !slices.Equal(q.Workloads, []string{wlFence}) {
		t.Errorf("--quick --workloads fence: %v, %v", q.Workloads, err)
	}
	_, err = parseFlags([]string{"--repo", repo, "--workloads", "report-batch", "--keys", "50"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--batch-size: 100 is more than --keys 50") {
		t.Errorf("report-batch of 100 over 50 keys: err = %v", err)
	}
	if _, err := parseFlags([]string{"--repo", repo, "--workloads", "report-batch", "--keys", "50", "--batch-size", "50"}, io.Discard); err != nil {
		t.Errorf("report-batch of 50 over 50 keys: %v", err)
	}
	if _, err := parseFlags([]string{"--repo", repo, "--workloads", "batch", "--keys", "50"}, io.Discard); err != nil {
		t.Errorf("batch of 100 over 50 keys (repeats allowed): %v", err)
	}
}

func TestPlanRunsEnforcementReadsBeforeWrites(t *testing.T) {
	c := DefaultConfig()
	c.Workloads = []string{wlReportBatch, wlSet, wlFence, wlCache, wlCheck, wlGate, wlReport, wlGateReceipt}
	c.Dists, c.Concurrency = []string{distUniform}, []int{1}
	var got []string
	for _, cell := range planCells(c) {
		got = append(got, cell.Workload)
	}
	want := []string{wlCheck, wlGate, wlGateReceipt, wlCache, wlFence, wlSet, wlReport, wlReportBatch}
	if !slices.Equal(got, want) {
		t.Errorf("planCells order %v, want %v", got, want)
	}
}

// The cache cell's ratios are cache ÷ plain Gate of the same system per
// round; etcd, which has no cache, has none; the report shows them.
func TestCacheSummaryAndReport(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workloads, cfg.Dists, cfg.Concurrency = []string{wlCache, wlFence}, []string{distUniform}, []int{8}
	var runs []map[string]*WorkloadRun
	for i, c := range [][2]float64{{3000, 1000}, {2000, 1000}, {4500, 1500}} {
		cache := fakeRun(c[0], 2, 10)
		cache.PlainGate = fakeRun(c[1], 4, 40)
		cache.Cache = &CacheRun{Hits: 99, Misses: 1, HitRate: 0.99 - 0.01*float64(i), LookupsPerRound: 4}
		runs = append(runs, map[string]*WorkloadRun{sysOptoutd: cache, sysEtcd: fakeRun(1500, 1, 5)})
	}
	res := fakeResults(cfg, runs)
	res.summarize()
	cs := res.Summary["cache/uniform/8"]
	if cs == nil || cs.Cache == nil || cs.Cache[sysEtcd] != nil {
		t.Fatalf("cache summary %+v: want optoutd's only", cs)
	}
	c := cs.Cache[sysOptoutd]
	// Per round 3000/1000, 2000/1000, 4500/1500: 3, 2, 3.
	if c.Ratio.OpsPerSec.Median != 3 || c.Ratio.OpsPerSec.Min != 2 || c.Ratio.P99.Median != 0.25 || c.Ratio.P50.Median != 0.5 {
		t.Errorf("cache ÷ plain Gate = %+v", c.Ratio)
	}
	if c.HitRate.Median != 0.98 || c.HitRate.Min != 0.97 || c.PlainOpsPerSec.Median != 1000 || len(c.PerRound) != 3 || *c.PerRound[1].OpsPerSec != 2 {
		t.Errorf("hit rate %+v, plain ops %+v, per round %+v", c.HitRate, c.PlainOpsPerSec, c.PerRound)
	}
	if res.Summary["fence/uniform/8"].Cache != nil {
		t.Error("a fence cell has a cache summary")
	}
	var md strings.Builder
	writeMarkdown(&md, res, nil)
	for _, want := range []string{"## Enforcement workloads, round by round", "| cache/uniform/8 | 2 |", "| 0.9800 | 1,000 (4.00 / 40.0 ms) | 2.00× | 0.50× / 0.25× |",
		"## Cache against plain Gate", "| cache/uniform/8 | optoutd | 3,000 [2,000–4,500] / 1,000 [1,000–1,500] | **3.00× [2.00–3.00]** |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("summary.md lacks %q", want)
		}
	}
	var bt strings.Builder
	writeBenchfmt(&bt, res)
	if !strings.Contains(bt.String(), "BenchmarkCachePlainGate/dist=uniform/clients=8/system=optoutd\t1000\t") {
		t.Errorf("bench.txt lacks the plain Gate runs:\n%s", bt.String())
	}
	if line := oneLine(res, "x"); !strings.Contains(line, "cache/uniform ×8 2.00× [1.33–3.00] (3.00× [2.00–3.00] plain Gate)") {
		t.Errorf("oneLine = %s", line)
	}
}

func TestCacheChartHasPlainGate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workloads, cfg.Dists, cfg.Concurrency = []string{wlCache}, []string{distUniform}, []int{1, 8}
	cache := fakeRun(3000, 2, 10)
	cache.PlainGate = fakeRun(1000, 4, 40)
	res := fakeResults(cfg, []map[string]*WorkloadRun{{sysOptoutd: cache, sysEtcd: fakeRun(1500, 1, 5)}})
	res.summarize()
	pts := cachePoints(res, distUniform, sysOptoutd, func(c *CacheSummary) Spread { return c.PlainOpsPerSec })
	if len(pts.XYs) != 2 || pts.XYs[0].Y != 1000 || pts.XYs[1].X != 8 {
		t.Errorf("plain Gate points %v, want 1000 calls/s at 1 and 8 clients", pts.XYs)
	}
	if e := cachePoints(res, distUniform, sysEtcd, func(c *CacheSummary) Spread { return c.PlainOpsPerSec }); len(e.XYs) != 0 {
		t.Errorf("etcd has plain Gate points %v", e.XYs)
	}
	names, err := writeCharts(t.TempDir(), res)
	if err != nil || !slices.Equal(names, []string{"bench-sweep-cache.png"}) {
		t.Errorf("writeCharts = %v, %v", names, err)
	}
}
