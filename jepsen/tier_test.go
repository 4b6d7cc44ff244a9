package jepsen

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/optoutd/optoutd/jepsen/nemesis"
)

func base() RunConfig {
	return RunConfig{Backend: "netns", Nodes: 5, Concurrency: 10, Keys: 8, Seed: 9}
}

func TestCITier(t *testing.T) {
	runs, err := TierConfig{Tier: TierCI, Base: base(), NegativeRuns: -1}.Runs()
	if err != nil {
		t.Fatal(err)
	}
	names := nemesis.Names()
	if len(runs) != len(names)+3+2 {
		t.Fatalf("%d runs, want %d", len(runs), len(names)+3+2)
	}
	var budget time.Duration
	for i, r := range runs {
		budget += r.Time
		switch {
		case i < len(names):
			if len(r.Nemeses) != 1 || r.Nemeses[0] != names[i] || r.Overlap || r.NegativeControl || r.Time != CITime || r.workload() != WorkloadRegister {
				t.Fatalf("run %d: %+v", i, r)
			}
		case i < len(names)+3:
			if !r.NegativeControl || r.Keys != 3 || !r.unsafeReads() || !slices.Contains(ServerArgs(true), "--unsafe-stale-reads-for-chaos-tests") {
				t.Fatalf("negative run %+v", r)
			}
		case i == len(names)+3:
			if r.workload() != WorkloadEnforce || r.NegativeControl || !slices.Equal(r.Nemeses, EnforceNemeses) || r.Time != EnforceTime {
				t.Fatalf("enforcement run %+v", r)
			}
		default:
			// The enforcement negative control breaks the services, not
			// the nodes.
			if r.workload() != WorkloadEnforce || !r.NegativeControl || r.unsafeReads() || r.Time != NegativeTime {
				t.Fatalf("enforcement negative run %+v", r)
			}
		}
	}
	// The CI tier must fit in about 10 minutes on two cores (of CI's 20;
	// 9 before the enforcement pair): workload time leaves room for ~10 s
	// of set-up, checking and teardown per run.
	if budget+time.Duration(len(runs))*10*time.Second > 10*time.Minute {
		t.Fatalf("CI tier workload time %v is too long", budget)
	}
	if slices.Contains(ServerArgs(false), "--unsafe-stale-reads-for-chaos-tests") {
		t.Fatal("ordinary runs must not use unsafe reads")
	}
}

func TestLongTierOverlaps(t *testing.T) {
	runs, err := TierConfig{Tier: TierLong, Base: base(), NegativeRuns: 1, Nemeses: []string{"kill", "pause"}}.Runs()
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 5 || !runs[0].Overlap || runs[0].Time != LongTime || runs[0].Nemeses[0] != "kill" || !runs[2].NegativeControl ||
		runs[3].Name != "enforce-overlap" || !runs[3].Overlap || runs[3].Time != LongTime || !runs[4].NegativeControl || runs[4].workload() != WorkloadEnforce {
		t.Fatalf("%+v", runs)
	}
}

func TestSingleTierAndErrors(t *testing.T) {
	runs, err := TierConfig{Tier: TierSingle, Base: base(), Nemeses: []string{"kill", "pause"}, Time: 30 * time.Second, NegativeRuns: -1}.Runs()
	if err != nil || len(runs) != 1 || runs[0].Name != "kill+pause" {
		t.Fatalf("%+v %v", runs, err)
	}
	runs, err = TierConfig{Tier: TierSingle, Base: base(), Nemeses: []string{"kill"}, Workload: WorkloadEnforce, NegativeRuns: 2}.Runs()
	if err != nil || len(runs) != 3 || runs[0].workload() != WorkloadEnforce || !runs[1].NegativeControl || runs[2].workload() != WorkloadEnforce ||
		runs[2].unsafeReads() || runs[2].Name != "enforce-negative-control-2" {
		t.Fatalf("single enforcement tier: %+v %v", runs, err)
	}
	runs, err = TierConfig{Tier: TierSingle, Base: base(), NegativeOnly: true, Workload: WorkloadEnforce, NegativeRuns: 3}.Runs()
	if err != nil || len(runs) != 3 || !runs[0].NegativeControl || runs[0].workload() != WorkloadEnforce {
		t.Fatalf("enforcement negative control only: %+v %v", runs, err)
	}
	for _, tc := range []struct {
		tc   TierConfig
		want string
	}{
		{TierConfig{Tier: TierSingle, Base: base(), Nemeses: []string{"kill"}, Workload: "bank"}, "--workload: unknown \"bank\""},
		{TierConfig{Tier: TierCI, Base: base(), Workload: WorkloadEnforce}, "--workload: the ci tier runs every workload"},
		{TierConfig{Tier: TierSingle, Base: func() RunConfig { b := base(); b.Workload = "x"; return b }(), Nemeses: []string{"kill"}}, "--workload"},
		{TierConfig{Tier: TierSingle, Base: base(), NegativeRuns: -1}, "--nemesis"},
		{TierConfig{Tier: "x", Base: base(), Nemeses: []string{"kill"}}, "--tier"},
		{TierConfig{Tier: TierCI, Base: base(), Time: -time.Second}, "--time"},
		{TierConfig{Tier: TierCI, Base: base(), Time: 2 * time.Second}, "--time"},
		{TierConfig{Tier: TierCI, Base: func() RunConfig { b := base(); b.Nodes = 1; return b }()}, "--nodes"},
	} {
		if _, err := tc.tc.Runs(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.tc, err, tc.want)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RepoRoot("/"); err == nil {
		t.Fatal("found a repository at /")
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "optoutd")); err != nil {
		t.Fatalf("root %q has no cmd/optoutd: %v", root, err)
	}
}
