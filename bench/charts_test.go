package main

import (
	"os"
	"path/filepath"
	"testing"
)

// sweepPoints are the medians and min–max of one line, in concurrency
// order, leaving out cells that have no value.
func TestSweepPoints(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workloads, cfg.Dists, cfg.Concurrency = []string{wlBatch}, []string{distUniform}, []int{1, 16, 64}
	var runs []map[string]*WorkloadRun
	for _, v := range []float64{100, 200, 300} {
		o := fakeRun(v, 1, 10)
		o.KeysPerSec = v * 100
		e := fakeRun(v/2, 1, 5)
		e.KeysPerSec = v * 50
		runs = append(runs, map[string]*WorkloadRun{sysOptoutd: o, sysEtcd: e})
	}
	res := fakeResults(cfg, runs)
	// etcd did not run the 64-client cell at all.
	for _, rr := range res.Rounds {
		delete(rr.Cells[2].Runs, sysEtcd)
	}
	res.summarize()
	o := sweepPoints(res, wlBatch, distUniform, sysOptoutd, chartThroughput)
	if len(o.XYs) != 3 || o.XYs[0].X != 1 || o.XYs[2].X != 64 || o.XYs[1].Y != 20000 {
		t.Fatalf("optoutd points = %+v", o.XYs)
	}
	if lo, hi := o.YError(1); lo != 10000 || hi != 10000 {
		t.Errorf("optoutd range at 16 = -%v +%v, want ±10000 (keys/s 10000–30000)", lo, hi)
	}
	if e := sweepPoints(res, wlBatch, distUniform, sysEtcd, chartThroughput); len(e.XYs) != 2 {
		t.Errorf("etcd points = %+v, want 2 (no 64-client cell)", e.XYs)
	}
	if r := sweepPoints(res, wlBatch, distUniform, sysOptoutd, chartRatio); len(r.XYs) != 2 || r.XYs[0].Y != 2 {
		t.Errorf("ratio points = %+v, want 2 at 1 and 16 clients", r.XYs)
	}
	if p := sweepPoints(res, wlBatch, distZipf, sysOptoutd, chartP99); len(p.XYs) != 0 {
		t.Errorf("a distribution not run: %+v", p.XYs)
	}
	dir := t.TempDir()
	names, err := writeCharts(dir, res)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "bench-sweep-batch.png" {
		t.Fatalf("charts = %v", names)
	}
	if st, err := os.Stat(filepath.Join(dir, names[0])); err != nil || st.Size() < 1000 {
		t.Errorf("chart file: %v, %v", st, err)
	}
}
