package main

import (
	"fmt"
	"io"
	"strings"
)

// writeEnforceTables: the enforcement cells round by round, and the cache
// against plain Gate.
func writeEnforceTables(w io.Writer, res *Results) {
	var cells []Cell
	for _, c := range res.Cells {
		if isEnforcement(c.Workload) {
			cells = append(cells, c)
		}
	}
	if len(cells) == 0 {
		return
	}
	a, b := res.sides()
	fmt.Fprintf(w, "\n## Enforcement workloads, round by round\n\n")
	fmt.Fprintf(w, "optoutd asks about the pre-loaded subjects for the purpose `%s`, where none has a record: the default (allow) decides, receipts are allow receipts, "+
		"fences answer PROCESS, reports are clean. etcd: a linearizable Get of the pre-loaded key for gate, gate-receipt, cache and fence (for fence a proxy: one linearizable read each), "+
		"a Put for report, a Txn of %d Puts for report-batch. Throughput in calls/s (report-batch: reports/s). Cache: hit rate over the run, warm-up included; "+
		"plain Gate is the same system's Gate on the same keys, measured back to back with the cache in the same cell.\n\n", enforcePurpose, res.Config.BatchSize)
	fmt.Fprintf(w, "| cell | round | first | %s | %s | ratio | p50 ms | p99 ms | ratio p50 / p99 | hit rate | plain Gate | cache ÷ plain Gate | ÷ p50 / p99 |\n", a, b)
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, cell := range cells {
		cs := res.Summary[cell.Key()]
		for i, rr := range res.Rounds {
			ra, rb := cellRun(rr, cell.Key(), a), cellRun(rr, cell.Key(), b)
			first := ""
			for _, c := range rr.Cells {
				if c.Key() == cell.Key() && len(c.Order) > 0 {
					first = c.Order[0]
				}
			}
			var pr RoundRatio
			if cs != nil && i < len(cs.PerRound) {
				pr = cs.PerRound[i]
			}
			hit, plain, vs, vsLat := "–", "–", "–", "–"
			if ra != nil && ra.Cache != nil {
				hit = fmt.Sprintf("%.4f", ra.Cache.HitRate)
			}
			if ra != nil && ra.PlainGate != nil && ra.PlainGate.Ops > 0 && ra.Ops > 0 {
				p := ra.PlainGate
				plain = fmtNum(p.OpsPerSec) + " (" + fmtNum(p.Latency.P50Ms) + " / " + fmtNum(p.Latency.P99Ms) + " ms)"
				vs = fmt.Sprintf("%.2f×", ra.OpsPerSec/p.OpsPerSec)
				vsLat = fmt.Sprintf("%.2f× / %.2f×", ra.Latency.P50Ms/p.Latency.P50Ms, ra.Latency.P99Ms/p.Latency.P99Ms)
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s |\n", cell.Key(), rr.Round, first,
				rateOf(ra, cell.Workload), rateOf(rb, cell.Workload), fmtPtr(pr.OpsPerSec),
				latOf(ra, func(l LatencySummary) float64 { return l.P50Ms }, latOf(rb, func(l LatencySummary) float64 { return l.P50Ms }, "")),
				latOf(ra, func(l LatencySummary) float64 { return l.P99Ms }, latOf(rb, func(l LatencySummary) float64 { return l.P99Ms }, "")),
				fmtPtr(pr.P50), fmtPtr(pr.P99), hit, plain, vs, vsLat)
		}
	}
	writeCacheSummary(w, res, cells)
}

// writeCacheSummary: the cache cells across rounds, by system with a cache.
func writeCacheSummary(w io.Writer, res *Results, cells []Cell) {
	var rows []string
	for _, cell := range cells {
		cs := res.Summary[cell.Key()]
		if cs == nil || cs.Cache == nil {
			continue
		}
		for _, s := range res.Config.Systems {
			c := cs.Cache[s]
			if c == nil {
				continue
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %s / %s | **%s** | %s / %s | %s | %s | %s | %s |", cell.Key(), s,
				fmtSpread(cs.OpsPerSec[s]), fmtSpread(c.PlainOpsPerSec), fmtRatio(c.Ratio.OpsPerSec),
				fmtSpread(cs.P50Ms[s]), fmtSpread(c.PlainP50Ms), fmtRatio(c.Ratio.P99), fmtRatio(c.Ratio.CPUPerOp),
				fmtSpread(c.HitRate), fmtSpread(c.LookupsPerRound)))
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Cache against plain Gate (same system, same cell; ratios cache ÷ plain Gate per round)\n\n")
	fmt.Fprintf(w, "| cell | system | calls/s cache / plain | ratio | p50 ms cache / plain | ratio p99 | ratio node CPU per call | hit rate | lookups per read-index round |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|\n%s\n", strings.Join(rows, "\n"))
}

func rateOf(r *WorkloadRun, wl string) string {
	if r == nil || r.Ops == 0 {
		return "n/a"
	}
	if perKey(wl) {
		return fmtNum(r.KeysPerSec)
	}
	return fmtNum(r.OpsPerSec)
}

// latOf is "a / b" of a latency of r and the other side's text.
func latOf(r *WorkloadRun, f func(LatencySummary) float64, other string) string {
	v := "n/a"
	if r != nil && r.Ops > 0 {
		v = fmtNum(f(r.Latency))
	}
	if other == "" {
		return v
	}
	return v + " / " + other
}

func fmtPtr(x *float64) string {
	if x == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", *x)
}
