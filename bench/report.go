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

func fmtPtr(p *float64, suffix string) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f%s", *p, suffix)
}

// sides are the two systems of the tables, ratio = a / b: optoutd and the
// system it is compared with, or optoutd and etcd when only one ran.
func (res *Results) sides() (a, b string) {
	if a, b, ok := res.Config.pair(); ok {
		return a, b
	}
	return sysOptoutd, sysEtcd
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
		fmt.Fprintf(w, "- optoutd: %s (`--optoutd-rev %s`); optoutd-base: %s (`--base-rev %s`); both driven by the bench's client. Each: 3 OS processes on loopback, fsync on, fresh data dir per round.\n",
			res.OptoutdCommit, c.OptoutdRev, res.BaseCommit, c.BaseRev)
	} else {
		fmt.Fprintf(w, "- optoutd %s; etcd %s. Each: 3 OS processes on loopback, fsync on, fresh data dir per round.\n", res.OptoutdCommit, res.EtcdVersion)
	}
	fmt.Fprintf(w, "- %d round(s), the first system alternating (ABBA…); %v measured per workload after %v warm-up; %d closed-loop clients; target `%s`; %d pre-loaded keys; %d failover sample(s) per system per round.\n",
		c.Rounds, c.Duration, c.Warmup, c.Concurrency, c.Target, c.Keys, c.FailoverSamples)
	fmt.Fprintf(w, "- Wall time %.0f s. Spread is `median [min–max]` across rounds (failover: across samples).\n\n", res.WallSeconds)

	fmt.Fprintf(w, "## Headline (ratio = %s / %s, formed per round)\n\n", a, b)
	fmt.Fprintf(w, "| metric | %s | %s | ratio |\n|---|---|---|---|\n", a, b)
	for _, wl := range []string{wlReads, wlWrites, wlCAS} {
		ws := res.Summary[wl]
		if ws == nil {
			continue
		}
		fmt.Fprintf(w, "| %s ops/s | %s | %s | %s |\n", wl, fmtSpread(ws.OpsPerSec[a]), fmtSpread(ws.OpsPerSec[b]), fmtRatio(ws.Ratio.OpsPerSec))
		fmt.Fprintf(w, "| %s p50 ms | %s | %s | %s |\n", wl, fmtSpread(ws.P50Ms[a]), fmtSpread(ws.P50Ms[b]), fmtRatio(ws.Ratio.P50))
		fmt.Fprintf(w, "| %s p99 ms | %s | %s | %s |\n", wl, fmtSpread(ws.P99Ms[a]), fmtSpread(ws.P99Ms[b]), fmtRatio(ws.Ratio.P99))
		fmt.Fprintf(w, "| %s node CPU µs/op | %s | %s | %s |\n", wl, fmtSpread(ws.CPUPerOpUs[a]), fmtSpread(ws.CPUPerOpUs[b]), fmtRatio(ws.Ratio.CPUPerOp))
	}
	if f := res.Failover; f != nil {
		fmt.Fprintf(w, "| failover: write unavailable ms | %s | %s | %s |\n", fmtSpread(f.WriteMs[a]), fmtSpread(f.WriteMs[b]), fmtRatio(f.RatioWrite))
		fmt.Fprintf(w, "| failover: read unavailable ms | %s | %s | %s |\n", fmtSpread(f.ReadMs[a]), fmtSpread(f.ReadMs[b]), fmtRatio(f.RatioRead))
		fmt.Fprintf(w, "| failover: new leader seen ms | %s | %s | |\n", fmtSpread(f.ElectedMs[a]), fmtSpread(f.ElectedMs[b]))
	}
	fmt.Fprintf(w, "\nFor ops/s a ratio above 1 means %s is faster; for latencies, CPU per request and failover times, above 1 means %s is slower or costlier.\n", a, a)
	fmt.Fprintln(w, "Node CPU µs/op: CPU time of the 3 node processes per successful request (warm-up included); it depends less on the machine's noise than ops/s does.")

	for _, wl := range []string{wlReads, wlWrites, wlCAS} {
		if res.Summary[wl] != nil {
			writeWorkloadTable(w, res, wl)
		}
	}
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

func writeWorkloadTable(w io.Writer, res *Results, wl string) {
	ws := res.Summary[wl]
	a, b := res.sides()
	ab := abbrev(a, b)
	fmt.Fprintf(w, "\n## %s\n\n", wl)
	fmt.Fprintf(w, "| round | first | %s ops/s | %s ops/s | ratio ops/s | %s p50 / p99 ms | %s p50 / p99 ms | ratio p50 | ratio p99 | node CPU µs/op (%s) | ratio CPU/op | other load, cores (%s) | IO pressure %% (%s) | errors (%s) |\n",
		a, b, a, b, ab, ab, ab, ab)
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, rr := range res.Rounds {
		o, e := runOf(rr, a, wl), runOf(rr, b, wl)
		pr := ws.PerRound[i]
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", rr.Round, rr.Order[0],
			opsCell(o), opsCell(e), fmtPtr(pr.OpsPerSec, "×"), latCell(o), latCell(e),
			fmtPtr(pr.P50, "×"), fmtPtr(pr.P99, "×"), cpuCell(o, false)+" / "+cpuCell(e, false), fmtPtr(pr.CPUPerOp, "×"),
			cpuCell(o, true)+" / "+cpuCell(e, true), ioCell(o)+" / "+ioCell(e), errCell(o)+"/"+errCell(e))
	}
	fmt.Fprintf(w, "| **median [min–max]** | | %s | %s | **%s** | %s / %s | %s / %s | %s | %s | %s / %s | %s | | | |\n",
		fmtSpread(ws.OpsPerSec[a]), fmtSpread(ws.OpsPerSec[b]), fmtRatio(ws.Ratio.OpsPerSec),
		fmtSpread(ws.P50Ms[a]), fmtSpread(ws.P99Ms[a]),
		fmtSpread(ws.P50Ms[b]), fmtSpread(ws.P99Ms[b]), fmtRatio(ws.Ratio.P50), fmtRatio(ws.Ratio.P99),
		fmtSpread(ws.CPUPerOpUs[a]), fmtSpread(ws.CPUPerOpUs[b]), fmtRatio(ws.Ratio.CPUPerOp))
}

// abbrev is "o/e" for optoutd/etcd and "o/b" for optoutd/optoutd-base.
func abbrev(a, b string) string {
	if b == sysOptoutdBase {
		return "o/b"
	}
	return a[:1] + "/" + b[:1]
}

func runOf(rr *RoundResult, sys, wl string) *WorkloadRun {
	if sr := rr.Systems[sys]; sr != nil {
		return sr.Workloads[wl]
	}
	return nil
}

func opsCell(r *WorkloadRun) string {
	if r == nil {
		return "n/a"
	}
	return fmtNum(r.OpsPerSec)
}

func latCell(r *WorkloadRun) string {
	if r == nil || r.Ops == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f / %.2f", r.Latency.P50Ms, r.Latency.P99Ms)
}

func cpuCell(r *WorkloadRun, other bool) string {
	if r == nil {
		return "n/a"
	}
	if other {
		return fmt.Sprintf("%.2f", r.CPU.OtherCores)
	}
	return fmt.Sprintf("%.0f", r.CPU.NodeCPUPerOpUs)
}

func ioCell(r *WorkloadRun) string {
	if r == nil || r.CPU.IOPressurePct == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", *r.CPU.IOPressurePct)
}

func errCell(r *WorkloadRun) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprint(r.Errors)
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

// writeBenchfmt writes Go benchmark lines, one per round and system, so
// `benchstat -col /system bench.txt` compares the two systems.
func writeBenchfmt(w io.Writer, res *Results) {
	fmt.Fprintf(w, "goos: linux\ngoarch: amd64\npkg: github.com/optoutd/optoutd/bench\ncpu: %s\n", res.Host.CPUModel)
	names := map[string]string{wlReads: "Reads", wlWrites: "Writes", wlCAS: "CAS"}
	for _, rr := range res.Rounds {
		for _, sys := range res.Config.Systems {
			sr := rr.Systems[sys]
			if sr == nil {
				continue
			}
			for _, wl := range []string{wlReads, wlWrites, wlCAS} {
				r := sr.Workloads[wl]
				if r == nil || r.Ops == 0 {
					continue
				}
				fmt.Fprintf(w, "Benchmark%s/system=%s\t%d\t%.0f ns/op\t%.1f ops/s\t%.0f p50-ns\t%.0f p99-ns\t%.0f node-cpu-ns/op\n",
					names[wl], sys, r.Ops, 1e9/r.OpsPerSec, r.OpsPerSec, r.Latency.P50Ms*1e6, r.Latency.P99Ms*1e6, r.CPU.NodeCPUPerOpUs*1e3)
			}
			for _, s := range sr.Failover {
				fmt.Fprintf(w, "BenchmarkFailover/system=%s\t1\t%.0f write-unavail-ns\t%.0f read-unavail-ns\t%.0f load-write-recovery-ns\n",
					sys, s.WriteUnavailableMs*1e6, s.ReadUnavailableMs*1e6, s.LoadWriteRecoveryMs*1e6)
			}
		}
	}
}

// oneLine is the closing summary: the first system's medians and, when
// both ran, the ratios.
func oneLine(res *Results, dir string) string {
	sys := res.Config.Systems[0]
	a, b, both := res.Config.pair()
	if both {
		sys = a
	}
	var parts []string
	for _, wl := range []string{wlReads, wlWrites, wlCAS} {
		if ws := res.Summary[wl]; ws != nil {
			p := fmt.Sprintf("%s %s ops/s", wl, fmtNum(ws.OpsPerSec[sys].Median))
			if both {
				p += " = " + fmtRatio(ws.Ratio.OpsPerSec)
			}
			parts = append(parts, p)
		}
	}
	if f := res.Failover; f != nil {
		p := fmt.Sprintf("failover %s ms", fmtNum(f.WriteMs[sys].Median))
		if both {
			p += " = " + fmtRatio(f.RatioWrite)
		}
		parts = append(parts, p)
	}
	status := ""
	if !res.Complete {
		status = " INCOMPLETE"
	}
	head := fmt.Sprintf("%s%s (median over %d round(s))", sys, status, len(res.Rounds))
	if both {
		head = fmt.Sprintf("%s vs %s%s (%s median; ratio %s/%s median [min–max] over %d round(s))", a, b, status, a, a, b, len(res.Rounds))
	}
	return fmt.Sprintf("%s: %s; results in %s", head, strings.Join(parts, "; "), dir)
}
