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

func writeMarkdown(w io.Writer, res *Results, charts []string) {
	c := res.Config
	fmt.Fprintf(w, "# optoutd vs etcd, %s\n\n", res.Started.Format(time.RFC3339))
	if !res.Complete {
		fmt.Fprintf(w, "**Incomplete run**: %s\n\n", res.Error)
	}
	fmt.Fprintf(w, "- Machine: %d CPUs (%s), %s, Linux %s; load average at start `%s`, at end `%s`.\n",
		res.Host.CPUs, res.Host.CPUModel, res.Host.GoVersion, res.Host.Kernel, res.Host.LoadAvgFrom, res.Host.LoadAvgTo)
	fmt.Fprintf(w, "- optoutd %s; etcd %s. Each: 3 OS processes on loopback, fsync on, fresh data dir per round.\n", res.OptoutdCommit, res.EtcdVersion)
	fmt.Fprintf(w, "- %d round(s), the first system alternating (ABBA…); %v measured per workload after %v warm-up; %d closed-loop clients; target `%s`; %d pre-loaded keys; %d failover sample(s) per system per round.\n",
		c.Rounds, c.Duration, c.Warmup, c.Concurrency, c.Target, c.Keys, c.FailoverSamples)
	fmt.Fprintf(w, "- Wall time %.0f s. Spread is `median [min–max]` across rounds (failover: across samples).\n\n", res.WallSeconds)

	fmt.Fprintf(w, "## Headline (ratio = optoutd / etcd, formed per round)\n\n")
	fmt.Fprintf(w, "| metric | optoutd | etcd | ratio |\n|---|---|---|---|\n")
	for _, wl := range []string{wlReads, wlWrites, wlCAS} {
		ws := res.Summary[wl]
		if ws == nil {
			continue
		}
		fmt.Fprintf(w, "| %s ops/s | %s | %s | %s |\n", wl, fmtSpread(ws.OpsPerSec[sysOptoutd]), fmtSpread(ws.OpsPerSec[sysEtcd]), fmtRatio(ws.Ratio.OpsPerSec))
		fmt.Fprintf(w, "| %s p50 ms | %s | %s | %s |\n", wl, fmtSpread(ws.P50Ms[sysOptoutd]), fmtSpread(ws.P50Ms[sysEtcd]), fmtRatio(ws.Ratio.P50))
		fmt.Fprintf(w, "| %s p99 ms | %s | %s | %s |\n", wl, fmtSpread(ws.P99Ms[sysOptoutd]), fmtSpread(ws.P99Ms[sysEtcd]), fmtRatio(ws.Ratio.P99))
		fmt.Fprintf(w, "| %s node CPU µs/op | %s | %s | %s |\n", wl, fmtSpread(ws.CPUPerOpUs[sysOptoutd]), fmtSpread(ws.CPUPerOpUs[sysEtcd]), fmtRatio(ws.Ratio.CPUPerOp))
	}
	if f := res.Failover; f != nil {
		fmt.Fprintf(w, "| failover: write unavailable ms | %s | %s | %s |\n", fmtSpread(f.WriteMs[sysOptoutd]), fmtSpread(f.WriteMs[sysEtcd]), fmtRatio(f.RatioWrite))
		fmt.Fprintf(w, "| failover: read unavailable ms | %s | %s | %s |\n", fmtSpread(f.ReadMs[sysOptoutd]), fmtSpread(f.ReadMs[sysEtcd]), fmtRatio(f.RatioRead))
		fmt.Fprintf(w, "| failover: new leader seen ms | %s | %s | |\n", fmtSpread(f.ElectedMs[sysOptoutd]), fmtSpread(f.ElectedMs[sysEtcd]))
	}
	fmt.Fprintln(w, "\nFor ops/s a ratio above 1 means optoutd is faster; for latencies, CPU per request and failover times, above 1 means optoutd is slower or costlier.")
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
	fmt.Fprintf(w, "\n## %s\n\n", wl)
	fmt.Fprintf(w, "| round | first | optoutd ops/s | etcd ops/s | ratio ops/s | optoutd p50 / p99 ms | etcd p50 / p99 ms | ratio p99 | node CPU µs/op (o/e) | other load, cores (o/e) | errors (o/e) |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, rr := range res.Rounds {
		o, e := runOf(rr, sysOptoutd, wl), runOf(rr, sysEtcd, wl)
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", rr.Round, rr.Order[0],
			opsCell(o), opsCell(e), fmtPtr(ws.PerRound[i].OpsPerSec, "×"), latCell(o), latCell(e),
			fmtPtr(ws.PerRound[i].P99, "×"), cpuCell(o, false)+" / "+cpuCell(e, false),
			cpuCell(o, true)+" / "+cpuCell(e, true), errCell(o)+"/"+errCell(e))
	}
	fmt.Fprintf(w, "| **median [min–max]** | | %s | %s | **%s** | %s / %s | %s / %s | %s | ratio %s | | |\n",
		fmtSpread(ws.OpsPerSec[sysOptoutd]), fmtSpread(ws.OpsPerSec[sysEtcd]), fmtRatio(ws.Ratio.OpsPerSec),
		fmtSpread(ws.P50Ms[sysOptoutd]), fmtSpread(ws.P99Ms[sysOptoutd]),
		fmtSpread(ws.P50Ms[sysEtcd]), fmtSpread(ws.P99Ms[sysEtcd]), fmtRatio(ws.Ratio.P99), fmtRatio(ws.Ratio.CPUPerOp))
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
	fmt.Fprintf(w, "\nPer-round ratio of medians (optoutd/etcd): write %s, read %s.\n", fmtRatio(f.RatioWrite), fmtRatio(f.RatioRead))
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
	both := len(res.Config.Systems) == 2
	if both {
		sys = sysOptoutd
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
		head = fmt.Sprintf("optoutd vs etcd%s (optoutd median; ratio optoutd/etcd median [min–max] over %d round(s))", status, len(res.Rounds))
	}
	return fmt.Sprintf("%s: %s; results in %s", head, strings.Join(parts, "; "), dir)
}
