package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// writeReport writes results.json, summary.md and bench.txt into dir.
func writeReport(dir string, res *Results, charts []string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	writeMarkdown(&md, res, charts)
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	var bt strings.Builder
	writeBenchfmt(&bt, res)
	return os.WriteFile(filepath.Join(dir, "bench.txt"), []byte(bt.String()), 0o644)
}

func fmtNum(x float64) string {
	switch {
	case x >= 100:
		return commas(fmt.Sprintf("%.0f", x))
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

func commas(s string) string {
	n := len(s)
	if n <= 3 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (n-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtSpread: "median [min–max]", or "n/a".
func fmtSpread(s Spread) string {
	if s.N == 0 {
		return "n/a"
	}
	if s.N == 1 {
		return fmtNum(s.Median)
	}
	return fmt.Sprintf("%s [%s–%s]", fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max))
}

func fmtRatio(s Spread) string {
	if s.N == 0 {
		return "n/a"
	}
	if s.N == 1 {
		return fmt.Sprintf("%.2f×", s.Median)
	}
	return fmt.Sprintf("%.2f× [%.2f–%.2f]", s.Median, s.Min, s.Max)
}

// seriesOf lists the (workload, dist) pairs of the sweep, in run order.
func seriesOf(cells []Cell) []Cell {
	var out []Cell
	for _, c := range cells {
		if len(out) == 0 || out[len(out)-1].Series() != c.Series() {
			out = append(out, Cell{Workload: c.Workload, Dist: c.Dist})
		}
	}
	return out
}

func writeMarkdown(w io.Writer, res *Results, charts []string) {
	c := res.Config
	a, b := res.sides()
	fmt.Fprintf(w, "# %s vs %s, %s\n\n", a, b, res.Started.Format(time.RFC3339))
	if !res.Complete {
		fmt.Fprintf(w, "**Incomplete run**: %s\n\n", res.Error)
	}
	fmt.Fprintf(w, "- Machine: %d CPUs (%s), %s, Linux %s; load average at start `%s`, at end `%s`.\n",
		res.Host.CPUs, res.Host.CPUModel, res.Host.GoVersion, res.Host.Kernel, res.Host.LoadAvgFrom, res.Host.LoadAvgTo)
	if b == sysOptoutdBase {
		fmt.Fprintf(w, "- optoutd: %s (`--optoutd-rev %s`); optoutd-base: %s (`--base-rev %s`); both driven by the bench's client.\n",
			res.OptoutdCommit, c.OptoutdRev, res.BaseCommit, c.BaseRev)
	} else {
		fmt.Fprintf(w, "- optoutd %s; etcd %s.\n", res.OptoutdCommit, res.EtcdVersion)
	}
	fmt.Fprintf(w, "- Each system: 3 OS processes on loopback, fsync on, a fresh data dir per round; both clusters up for the whole round, measured one at a time, back to back in each cell, the first alternating from cell to cell and round to round.\n")
	fmt.Fprintf(w, "- %d round(s); %v measured per cell after %v warm-up; clients %s; keys %s over %d pre-loaded (Zipf θ %.2f); batch %d keys per call; target `%s`; %d failover sample(s) per system per round with %d clients.\n",
		c.Rounds, c.Duration, c.Warmup, joinInts(c.Concurrency), strings.Join(c.Dists, " and "), c.Keys, c.ZipfTheta, c.BatchSize, c.Target, c.FailoverSamples, c.FailoverConcurrency)
	fmt.Fprintf(w, "- Wall time %.0f s. Spread is `median [min–max]` across rounds (failover: across samples). Ratios are %s / %s, formed per round.\n\n", res.WallSeconds, a, b)

	writeRatioGrid(w, res, "Throughput ratio (batch: keys/s; above 1: "+a+" faster)", func(cs *CellSummary) Spread { return cs.Ratio.OpsPerSec })
	writeRatioGrid(w, res, "p99 latency ratio (above 1: "+a+" slower)", func(cs *CellSummary) Spread { return cs.Ratio.P99 })
	writeRatioGrid(w, res, "Node CPU per call ratio (above 1: "+a+" costlier)", func(cs *CellSummary) Spread { return cs.Ratio.CPUPerOp })
	writeCellTable(w, res)
	writeEnforceTables(w, res)
	writeRunTable(w, res)
	if res.Failover != nil {
		writeFailoverTable(w, res)
	}
	fmt.Fprintf(w, "\n## Settings\n\n")
	for _, s := range c.Systems {
		fmt.Fprintf(w, "%s:\n\n", s)
		keys := make([]string, 0, len(res.Settings[s]))
		for k := range res.Settings[s] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "- %s: %s\n", k, res.Settings[s][k])
		}
		fmt.Fprintln(w)
	}
	if len(charts) > 0 {
		fmt.Fprintf(w, "## Charts\n\n")
		for _, ch := range charts {
			fmt.Fprintf(w, "![%s](%s)\n\n", strings.TrimSuffix(ch, ".png"), ch)
		}
	}
}

// writeRatioGrid: one row per workload and distribution, one column per
// concurrency, as in issue 11.
func writeRatioGrid(w io.Writer, res *Results, title string, f func(*CellSummary) Spread) {
	conc := res.Config.Concurrency
	fmt.Fprintf(w, "## %s\n\n| workload | keys |", title)
	for _, n := range conc {
		fmt.Fprintf(w, " %d client%s |", n, map[bool]string{true: "", false: "s"}[n == 1])
	}
	fmt.Fprintf(w, "\n|---|---|%s\n", strings.Repeat("---|", len(conc)))
	for _, s := range seriesOf(res.Cells) {
		fmt.Fprintf(w, "| %s | %s |", s.Workload, s.Dist)
		for _, n := range conc {
			cell := "n/a"
			if cs := res.Summary[Cell{Workload: s.Workload, Dist: s.Dist, Concurrency: n}.Key()]; cs != nil {
				cell = fmtRatio(f(cs))
			}
			fmt.Fprintf(w, " %s |", cell)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// writeCellTable: every cell's figures for both systems.
func writeCellTable(w io.Writer, res *Results) {
	a, b := res.sides()
	fmt.Fprintf(w, "## Every cell (%s / %s)\n\n", a, b)
	fmt.Fprintf(w, "Throughput is calls/s (batch: keys/s; report-batch: reports/s); latency per call; node CPU is the 3 nodes' CPU per call, warm-up included; errors summed over rounds (cas and mixed also count compare-and-set conflicts, which are answers, not errors); commits per fsync: acknowledged writes per commit of the leader's log.\n\n")
	fmt.Fprintf(w, "| cell | throughput | ratio | p50 ms | p99 ms | p99.9 ms | ratio p99 | node CPU µs/call | ratio CPU | errors | conflicts | commits per fsync |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, cell := range res.Cells {
		cs := res.Summary[cell.Key()]
		if cs == nil {
			continue
		}
		tp := cs.OpsPerSec
		if perKey(cell.Workload) {
			tp = cs.KeysPerSec
		}
		wpls := "–"
		if cs.WritesPerLogSync != nil {
			wpls = fmtSpread(cs.WritesPerLogSync[a]) + " / " + fmtSpread(cs.WritesPerLogSync[b])
		}
		fmt.Fprintf(w, "| %s | %s / %s | **%s** | %s / %s | %s / %s | %s / %s | %s | %s / %s | %s | %d / %d | %d / %d | %s |\n", cell.Key(),
			fmtSpread(tp[a]), fmtSpread(tp[b]), fmtRatio(cs.Ratio.OpsPerSec),
			fmtSpread(cs.P50Ms[a]), fmtSpread(cs.P50Ms[b]), fmtSpread(cs.P99Ms[a]), fmtSpread(cs.P99Ms[b]),
			fmtSpread(cs.P999Ms[a]), fmtSpread(cs.P999Ms[b]), fmtRatio(cs.Ratio.P99),
			fmtSpread(cs.CPUPerOpUs[a]), fmtSpread(cs.CPUPerOpUs[b]), fmtRatio(cs.Ratio.CPUPerOp),
			cs.Errors[a], cs.Errors[b], cs.Conflicts[a], cs.Conflicts[b], wpls)
	}
}

// writeRunTable: per-run figures (RSS, data dir, fsync floor).
func writeRunTable(w io.Writer, res *Results) {
	a, b := res.sides()
	rs := res.Run
	if rs == nil {
		return
	}
	fmt.Fprintf(w, "\n## Per run\n\n| | %s | %s | ratio |\n|---|---|---|---|\n", a, b)
	fmt.Fprintf(w, "| peak RSS of the largest node, MiB | %s | %s | %s |\n", fmtSpread(rs.PeakRSSMiB[a]), fmtSpread(rs.PeakRSSMiB[b]), fmtRatio(rs.RatioRSS))
	fmt.Fprintf(w, "| data dir bytes per record (mean node) | %s | %s | %s |\n", fmtSpread(rs.BytesPerRecord[a]), fmtSpread(rs.BytesPerRecord[b]), fmtRatio(rs.RatioBytesPerRecord))
	fmt.Fprintf(w, "| of which audit history (optoutd's audit buckets) | %s | %s | |\n", fmtSpread(rs.HistoryBytesPerRecord[a]), fmtSpread(rs.HistoryBytesPerRecord[b]))
	fmt.Fprintf(w, "| this machine's fsync floor (4 KiB overwrite + fdatasync), p50 / p99 ms | %s / %s | | |\n\n", fmtSpread(rs.FsyncP50Ms), fmtSpread(rs.FsyncP99Ms))
	note := ""
	if b == sysEtcd {
		note = "; etcd's preallocated 64 MiB WAL segments count in full, and its backend's `key` bucket keeps every revision of every key, as compaction is off"
	}
	fmt.Fprintf(w, "Data dirs after the round (nodes stopped; allocated bytes%s):\n\n", note)
	fmt.Fprintf(w, "| round | system | node | peak RSS MiB | data dir MiB | parts MiB | largest buckets MiB |\n|---|---|---|---|---|---|---|\n")
	for _, rr := range res.Rounds {
		for _, sys := range rr.Order {
			sr := rr.Systems[sys]
			if sr == nil || sr.Disk == nil {
				continue
			}
			for _, nd := range sr.Disk.Nodes {
				fmt.Fprintf(w, "| %d | %s | %s | %.0f | %.1f | %s | %s |\n", rr.Round, sys, nd.Node, float64(sr.PeakRSSBytes[nd.Node])/(1<<20),
					mib(nd.Bytes), fmtSizes(nd.Parts, 0), fmtSizes(nd.Buckets, 4)+errNote(nd.Error))
			}
		}
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// fmtSizes lists a size map largest first ("name 1.2; ..."), at most n
// entries (0: all).
func fmtSizes(m map[string]int64, n int) string {
	type kv struct {
		k string
		v int64
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	slices.SortFunc(l, func(x, y kv) int {
		if x.v != y.v {
			return int(y.v - x.v)
		}
		return strings.Compare(x.k, y.k)
	})
	if n > 0 && len(l) > n {
		l = l[:n]
	}
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = fmt.Sprintf("%s %.1f", e.k, mib(e.v))
	}
	return strings.Join(parts, "; ")
}

func writeFailoverTable(w io.Writer, res *Results) {
	fmt.Fprintf(w, "\n## failover (kill -9 of the leader under load)\n\n")
	fmt.Fprintf(w, "New leader seen: from the kill until a surviving node first reports itself leader (status polled every 5 ms). ")
	fmt.Fprintf(w, "Write (read) unavailable: from the kill to the first success of a fresh probe write (read); probes are sent every 10 ms after the kill. ")
	fmt.Fprintf(w, "Load recovery: the same for the steady closed-loop clients, counting only requests sent after the kill (a client stuck on a request lost in the failover waits for its timeout). ")
	fmt.Fprintf(w, "Longest gap: between two successful write completions around the kill.\n\n")
	fmt.Fprintf(w, "| round | system | sample | killed | new leader seen ms | write unavailable ms | read unavailable ms | load write / read recovery ms | longest write gap ms | new leader | errors |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, rr := range res.Rounds {
		for _, sys := range rr.Order {
			sr := rr.Systems[sys]
			if sr == nil {
				continue
			}
			for _, s := range sr.Failover {
				to := ""
				if s.TimedOut {
					to = " (timed out)"
				}
				fmt.Fprintf(w, "| %d | %s | %d | %s | %.0f | %.0f%s | %.0f | %.0f / %.0f | %.0f | %s | %d |\n", rr.Round, sys, s.Sample, s.Killed,
					s.LeaderElectedMs, s.WriteUnavailableMs, to, s.ReadUnavailableMs, s.LoadWriteRecoveryMs, s.LoadReadRecoveryMs, s.WriteGapMs, s.NewLeader, s.Errors)
			}
		}
	}
	f := res.Failover
	a, b := res.sides()
	fmt.Fprintf(w, "\nPer-round ratio of medians (%s/%s): write %s, read %s.\n", a, b, fmtRatio(f.RatioWrite), fmtRatio(f.RatioRead))
}

// writeBenchfmt writes Go benchmark lines, one per cell, round and
// system, so `benchstat -col /system bench.txt` compares the two systems.
func writeBenchfmt(w io.Writer, res *Results) {
	fmt.Fprintf(w, "goos: linux\ngoarch: amd64\npkg: github.com/optoutd/optoutd/bench\ncpu: %s\n", res.Host.CPUModel)
	for _, rr := range res.Rounds {
		for _, cr := range rr.Cells {
			for _, sys := range res.Config.Systems {
				r := cr.Runs[sys]
				if r == nil || r.Ops == 0 {
					continue
				}
				name := benchName(cr.Workload)
				fmt.Fprintf(w, "Benchmark%s/dist=%s/clients=%d/system=%s\t%d\t%.0f ns/op\t%.1f keys/s\t%.0f p50-ns\t%.0f p99-ns\t%.0f p99.9-ns\t%.0f node-cpu-ns/op\n",
					name, cr.Dist, cr.Concurrency, sys, r.Ops, 1e9/r.OpsPerSec, r.KeysPerSec, r.Latency.P50Ms*1e6, r.Latency.P99Ms*1e6, r.Latency.P999Ms*1e6, r.CPU.NodeCPUPerOpUs*1e3)
				if p := r.PlainGate; p != nil && p.Ops > 0 {
					fmt.Fprintf(w, "Benchmark%sPlainGate/dist=%s/clients=%d/system=%s\t%d\t%.0f ns/op\t%.1f keys/s\t%.0f p50-ns\t%.0f p99-ns\t%.0f p99.9-ns\t%.0f node-cpu-ns/op\n",
						name, cr.Dist, cr.Concurrency, sys, p.Ops, 1e9/p.OpsPerSec, p.KeysPerSec, p.Latency.P50Ms*1e6, p.Latency.P99Ms*1e6, p.Latency.P999Ms*1e6, p.CPU.NodeCPUPerOpUs*1e3)
				}
			}
		}
		for _, sys := range res.Config.Systems {
			if sr := rr.Systems[sys]; sr != nil {
				for _, s := range sr.Failover {
					fmt.Fprintf(w, "BenchmarkFailover/system=%s\t1\t%.0f write-unavail-ns\t%.0f read-unavail-ns\t%.0f load-write-recovery-ns\n",
						sys, s.WriteUnavailableMs*1e6, s.ReadUnavailableMs*1e6, s.LoadWriteRecoveryMs*1e6)
				}
			}
		}
	}
}

// oneLine is the closing summary: per workload and distribution, the
// throughput ratio at the lowest and highest concurrency.
func oneLine(res *Results, dir string) string {
	a, b, both := res.Config.pair()
	conc := res.Config.Concurrency
	var parts []string
	for _, s := range seriesOf(res.Cells) {
		var cells []string
		for _, n := range []int{conc[0], conc[len(conc)-1]} {
			cs := res.Summary[Cell{Workload: s.Workload, Dist: s.Dist, Concurrency: n}.Key()]
			if cs == nil {
				continue
			}
			v := fmtNum(cs.OpsPerSec[res.Config.Systems[0]].Median) + "/s"
			if both {
				v = fmtRatio(cs.Ratio.OpsPerSec)
			}
			if c := cs.Cache[sysOptoutd]; c != nil {
				v += " (" + fmtRatio(c.Ratio.OpsPerSec) + " plain Gate)"
			}
			cells = append(cells, fmt.Sprintf("×%d %s", n, v))
			if len(conc) == 1 {
				break
			}
		}
		parts = append(parts, s.Series()+" "+strings.Join(cells, ", "))
	}
	if f := res.Failover; f != nil && both {
		parts = append(parts, "failover writes "+fmtRatio(f.RatioWrite))
	}
	status := ""
	if !res.Complete {
		status = " INCOMPLETE"
	}
	head := fmt.Sprintf("%s%s (medians over %d round(s))", res.Config.Systems[0], status, len(res.Rounds))
	if both {
		head = fmt.Sprintf("%s vs %s%s (throughput ratio %s/%s, median [min–max] over %d round(s))", a, b, status, a, b, len(res.Rounds))
	}
	return fmt.Sprintf("%s: %s; results in %s", head, strings.Join(parts, "; "), dir)
}
