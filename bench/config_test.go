package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeRepo is a directory that looks like the optoutd repository.
func fakeRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "cmd", "optoutd"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestParseFlagsErrorsNameTheFlag(t *testing.T) {
	repo := fakeRepo(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--rounds", "0"}, "--rounds"},
		{[]string{"--rounds", "101"}, "--rounds"},
		{[]string{"--duration", "0s"}, "--duration"},
		{[]string{"--duration", "50ms"}, "--duration"},
		{[]string{"--warmup", "-1s"}, "--warmup"},
		{[]string{"--concurrency", "0"}, "--concurrency: 0 must be between 1 and 1024"},
		{[]string{"--concurrency", "1,5000"}, "--concurrency: 5000 must be between 1 and 1024"},
		{[]string{"--concurrency", "1,x"}, `--concurrency: "x" is not a number`},
		{[]string{"--concurrency", "16,16"}, "--concurrency: 16 named twice"},
		{[]string{"--concurrency", ""}, "--concurrency: must name at least one"},
		{[]string{"--dist", "normal"}, `--dist: unknown "normal"`},
		{[]string{"--dist", ""}, "--dist: must name at least one"},
		{[]string{"--zipf-theta", "1"}, "--zipf-theta"},
		{[]string{"--zipf-theta", "0"}, "--zipf-theta"},
		{[]string{"--zipf-theta", "NaN"}, "--zipf-theta"},
		{[]string{"--batch-size", "0"}, "--batch-size"},
		{[]string{"--batch-size", "1001"}, "--batch-size: 1001 must be between 1 and 1000"},
		{[]string{"--failover-concurrency", "1"}, "--failover-concurrency"},
		{[]string{"--failover-concurrency", "2000"}, "--failover-concurrency"},
		{[]string{"--keys", "10000001"}, "--keys"},
		{[]string{"--failover-samples", "101"}, "--failover-samples"},
		{[]string{"--warmup", "11m"}, "--warmup"},
		{[]string{"--duration", "2h"}, "--duration"},
		{[]string{"--op-timeout", "11m"}, "--op-timeout"},
		{[]string{"--keys", "0"}, "--keys"},
		{[]string{"--failover-samples", "0"}, "--failover-samples"},
		{[]string{"--op-timeout", "1ms"}, "--op-timeout"},
		{[]string{"--workloads", ""}, "--workloads: must name at least one"},
		{[]string{"--workloads", "check,scan"}, `--workloads: unknown "scan"`},
		{[]string{"--workloads", "check,check"}, `--workloads: "check" named twice`},
		{[]string{"--workloads", "reads,check"}, `--workloads: "check" named twice`},
		{[]string{"--systems", "mysql"}, `--systems: unknown "mysql"`},
		{[]string{"--target", "nearest"}, "--target"},
		{[]string{"--etcd-timing", "fast"}, "--etcd-timing"},
		{[]string{"--out", ""}, "--out"},
		{[]string{"--optoutd-rev", ""}, "--optoutd-rev"},
		{[]string{"--optoutd-bin", filepath.Join(repo, "nope")}, "--optoutd-bin"},
		{[]string{"--optoutd-bin", repo}, "--optoutd-bin"},
		{[]string{"--systems", "optoutd,optoutd-base"}, "--base-rev: required"},
		{[]string{"--systems", "optoutd-base"}, "--base-rev: required"},
		{[]string{"--base-rev", "bench-pre-domain"}, "--base-rev: set, but --systems optoutd,etcd does not include optoutd-base"},
		{[]string{"--systems", "optoutd", "--base-rev", "HEAD~1"}, "--base-rev: set"},
		{[]string{"--systems", "optoutd,optoutd-base", "--base-rev", "-x"}, "--base-rev: \"-x\" is not a revision"},
		{[]string{"--systems", "etcd,optoutd-base", "--base-rev", "v1"}, "--systems: \"etcd,optoutd-base\": a pair must include optoutd"},
		{[]string{"--systems", "optoutd,etcd,optoutd-base", "--base-rev", "v1"}, "--systems: \"optoutd,etcd,optoutd-base\": at most two"},
		{[]string{"--systems", "optoutd,optoutd-base,optoutd", "--base-rev", "v1"}, `--systems: "optoutd" named twice`},
		{[]string{"--systems", "optoutd,optoutd_base", "--base-rev", "v1"}, `--systems: unknown "optoutd_base"`},
		{[]string{"--client-http1", "etcd"}, `--client-http1: "etcd" is not an optoutd system`},
		{[]string{"--client-http1", "optoutd-base"}, `--client-http1: "optoutd-base" is not an optoutd system in --systems optoutd,etcd`},
		{[]string{"--client-h2c", "etcd"}, `--client-h2c: "etcd" is not an optoutd system`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append([]string{"--repo", repo}, tt.args...)
			_, err := parseFlags(args, io.Discard)
			if err == nil {
				t.Fatalf("parseFlags(%q) succeeded, want an error containing %q", tt.args, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseFlagsRepoAndArgs(t *testing.T) {
	if _, err := parseFlags([]string{"--repo", t.TempDir()}, io.Discard); err == nil || !strings.Contains(err.Error(), "--repo") {
		t.Errorf("a repo without cmd/optoutd: err = %v, want one naming --repo", err)
	}
	if _, err := parseFlags([]string{"--repo", fakeRepo(t), "extra"}, io.Discard); err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Errorf("a stray argument: err = %v", err)
	}
	if _, err := parseFlags([]string{"--no-such-flag"}, io.Discard); err == nil || !strings.Contains(err.Error(), "no-such-flag") {
		t.Errorf("an unknown flag: err = %v", err)
	}
}

func TestParseFlagsValues(t *testing.T) {
	repo := fakeRepo(t)
	c, err := parseFlags([]string{"--repo", repo, "--workloads", " cas , reads, writes ", "--rounds", "3", "--dist", "zipf",
		"--duration", "4s", "--concurrency", "64, 1,16", "--target", "leader", "--etcd-timing", "default", "--zipf-theta", "0.5",
		"--batch-size", "10", "--failover-concurrency", "4"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Workloads, ",") != "cas,check,set" || c.Rounds != 3 || c.Duration != 4*time.Second ||
		!slices.Equal(c.Concurrency, []int{1, 16, 64}) || c.Target != targetLeader || c.EtcdTiming != etcdTimingDefault ||
		!slices.Equal(c.Dists, []string{distZipf}) || c.ZipfTheta != 0.5 || c.BatchSize != 10 || c.FailoverConcurrency != 4 {
		t.Errorf("parsed %+v", c)
	}
	if !c.has(wlCAS) || c.has(wlFailover) {
		t.Errorf("has: cas=%v failover=%v", c.has(wlCAS), c.has(wlFailover))
	}
	if got := c.throughputOf(); !slices.Equal(got, []string{wlCheck, wlSet, wlCAS}) {
		t.Errorf("throughputOf = %v, want run order check, set, cas", got)
	}
	d, err := parseFlags([]string{"--repo", repo}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d.Rounds != 3 || d.Duration != 10*time.Second || !slices.Equal(d.Concurrency, []int{1, 16, 64, 256}) || d.Keys != 20000 ||
		len(d.Workloads) != 6 || len(d.Systems) != 2 || len(d.Dists) != 2 || d.BatchSize != 100 {
		t.Errorf("defaults = %+v", d)
	}
	if _, err := parseFlags([]string{"--repo", repo, "--client-h2c", "optoutd", "--client-http1", "optoutd"}, io.Discard); err != nil {
		t.Errorf("--client-h2c optoutd --client-http1 optoutd: %v", err)
	}
}

func TestParseFlagsBaseRev(t *testing.T) {
	repo := fakeRepo(t)
	for _, systems := range []string{"optoutd,optoutd-base", "optoutd-base,optoutd"} {
		c, err := parseFlags([]string{"--repo", repo, "--systems", systems, "--base-rev", "bench-pre-domain"}, io.Discard)
		if err != nil {
			t.Fatalf("--systems %s: %v", systems, err)
		}
		if c.BaseRev != "bench-pre-domain" || c.OptoutdRev != "HEAD" {
			t.Errorf("--systems %s: BaseRev %q, OptoutdRev %q", systems, c.BaseRev, c.OptoutdRev)
		}
		if a, b, ok := c.pair(); a != sysOptoutd || b != sysOptoutdBase || !ok {
			t.Errorf("--systems %s: pair() = %q, %q, %v; want optoutd, optoutd-base, true", systems, a, b, ok)
		}
	}
	c, err := parseFlags([]string{"--repo", repo, "--systems", "optoutd,optoutd-base", "--base-rev", "HEAD", "--client-h2c", "optoutd-base"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := newSystem(sysOptoutdBase, c, map[string]optoutdBuild{sysOptoutdBase: {Bin: "x"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if o := sys.(*optoutdSystem); !o.h2c || !strings.Contains(o.Settings()["client"], "h2c") {
		t.Errorf("--client-h2c optoutd-base: h2c = %v, client %q", o.h2c, o.Settings()["client"])
	}
	sys, err = newSystem(sysOptoutd, c, map[string]optoutdBuild{sysOptoutd: {Bin: "x"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if o := sys.(*optoutdSystem); o.h2c || !strings.Contains(o.Settings()["client"], "HTTP/1.1") {
		t.Errorf("optoutd uses h2c but only optoutd-base was named: %q", o.Settings()["client"])
	}
	// optoutd-base is built from --repo even when optoutd comes from
	// --optoutd-bin.
	bin := filepath.Join(repo, "optoutd")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := parseFlags([]string{"--repo", t.TempDir(), "--optoutd-bin", bin}, io.Discard); err != nil {
		t.Errorf("--optoutd-bin without a repo: %v", err)
	}
	_, err = parseFlags([]string{"--repo", t.TempDir(), "--optoutd-bin", bin, "--systems", "optoutd,optoutd-base", "--base-rev", "v1"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--repo") {
		t.Errorf("optoutd-base without a repo: err = %v, want one naming --repo", err)
	}
}

func TestPair(t *testing.T) {
	for _, tt := range []struct {
		systems []string
		a, b    string
		ok      bool
	}{
		{[]string{sysOptoutd, sysEtcd}, sysOptoutd, sysEtcd, true},
		{[]string{sysEtcd, sysOptoutd}, sysOptoutd, sysEtcd, true},
		{[]string{sysOptoutdBase, sysOptoutd}, sysOptoutd, sysOptoutdBase, true},
		{[]string{sysOptoutd}, "", "", false},
		{[]string{sysOptoutdBase}, "", "", false},
	} {
		c := Config{Systems: tt.systems}
		if a, b, ok := c.pair(); a != tt.a || b != tt.b || ok != tt.ok {
			t.Errorf("pair(%v) = %q, %q, %v; want %q, %q, %v", tt.systems, a, b, ok, tt.a, tt.b, tt.ok)
		}
	}
}

func TestQuickDefaultsYieldToExplicitFlags(t *testing.T) {
	repo := fakeRepo(t)
	q, err := parseFlags([]string{"--repo", repo, "--quick"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if q.Rounds != 1 || q.Duration != 500*time.Millisecond || q.Warmup != 200*time.Millisecond || q.Keys != 1000 ||
		q.FailoverSamples != 1 || !slices.Equal(q.Concurrency, []int{1, 8}) || len(q.Workloads) != len(allWorkloads) || len(q.Dists) != 2 {
		t.Errorf("--quick = %+v", q)
	}
	q, err = parseFlags([]string{"--repo", repo, "--quick", "--rounds", "3", "--duration", "5s", "--concurrency", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if q.Rounds != 3 || q.Duration != 5*time.Second || q.Keys != 1000 || !slices.Equal(q.Concurrency, []int{2}) {
		t.Errorf("--quick with --rounds 3 --duration 5s --concurrency 2 = %+v", q)
	}
}

// TestProfileFileNames: --pprof files are named by system, round, cell and
// node, with no spaces or slashes; without --pprof nothing is profiled.
func TestProfileFileNames(t *testing.T) {
	if got, want := fileLabel("optoutd-r2-check zipf ×16"), "optoutd-r2-check-zipf-c16"; got != want {
		t.Errorf("fileLabel = %q, want %q", got, want)
	}
	if err := profileCell(t.Context(), "", &optoutdSystem{debug: []string{"127.0.0.1:1"}}, "x", 0, 0)(); err != nil {
		t.Errorf("profileCell without a directory: %v", err)
	}
}
