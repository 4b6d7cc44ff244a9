package main

import (
	"io"
	"os"
	"path/filepath"
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
		{[]string{"--concurrency", "0"}, "--concurrency"},
		{[]string{"--concurrency", "5000"}, "--concurrency"},
		{[]string{"--keys", "0"}, "--keys"},
		{[]string{"--failover-samples", "0"}, "--failover-samples"},
		{[]string{"--op-timeout", "1ms"}, "--op-timeout"},
		{[]string{"--workloads", ""}, "--workloads: must name at least one"},
		{[]string{"--workloads", "reads,scan"}, `--workloads: unknown "scan"`},
		{[]string{"--workloads", "reads,reads"}, `--workloads: "reads" named twice`},
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
	c, err := parseFlags([]string{"--repo", repo, "--workloads", " cas , reads ", "--rounds", "3",
		"--duration", "4s", "--concurrency", "8", "--target", "leader", "--etcd-timing", "default"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Workloads, ",") != "cas,reads" || c.Rounds != 3 || c.Duration != 4*time.Second ||
		c.Concurrency != 8 || c.Target != targetLeader || c.EtcdTiming != etcdTimingDefault {
		t.Errorf("parsed %+v", c)
	}
	if !c.has(wlCAS) || c.has(wlFailover) {
		t.Errorf("has: cas=%v failover=%v", c.has(wlCAS), c.has(wlFailover))
	}
	d, err := parseFlags([]string{"--repo", repo}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d.Rounds != 5 || d.Duration != 10*time.Second || d.Concurrency != 32 || d.Keys != 10000 || len(d.Workloads) != 4 || len(d.Systems) != 2 {
		t.Errorf("defaults = %+v", d)
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
	c, err := parseFlags([]string{"--repo", repo, "--systems", "optoutd,optoutd-base", "--base-rev", "HEAD", "--client-http1", "optoutd-base"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := newSystem(sysOptoutdBase, c, map[string]optoutdBuild{sysOptoutdBase: {Bin: "x"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if o := sys.(*optoutdSystem); !o.http1 || !strings.Contains(o.Settings()["client"], "HTTP/1.1") {
		t.Errorf("--client-http1 optoutd-base: http1 = %v, client %q", o.http1, o.Settings()["client"])
	}
	sys, err = newSystem(sysOptoutd, c, map[string]optoutdBuild{sysOptoutd: {Bin: "x"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if o := sys.(*optoutdSystem); o.http1 {
		t.Error("optoutd uses HTTP/1.1 but only optoutd-base was named")
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
	if q.Rounds != 1 || q.Duration != 2*time.Second || q.Warmup != 500*time.Millisecond || q.Keys != 1000 || q.FailoverSamples != 1 {
		t.Errorf("--quick = %+v", q)
	}
	q, err = parseFlags([]string{"--repo", repo, "--quick", "--rounds", "3", "--duration", "5s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if q.Rounds != 3 || q.Duration != 5*time.Second || q.Keys != 1000 {
		t.Errorf("--quick with --rounds 3 --duration 5s = %+v", q)
	}
}
