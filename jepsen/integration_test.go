package jepsen

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/optoutd/optoutd/jepsen/db"
)

// rootAndLock skips unless the test runs as root with the tools the netns
// backend needs, and no harness run holds the lock (cleanup would tear a
// running harness down).
func rootAndLock(t *testing.T) {
	t.Helper()
	if err := db.CheckNetns(); err != nil {
		t.Skipf("needs root and ip/nft/iptables: %v", err)
	}
	release, err := Lock()
	if err != nil {
		t.Skipf("a harness run is in progress: %v", err)
	}
	t.Cleanup(release)
}

// TestCleanupRemovesLeftovers plays a crashed run: it leaves a namespace
// with a process in it, a veth pair, a bridge and a tagged iptables rule,
// and checks that CleanupNetns removes them all.
func TestCleanupRemovesLeftovers(t *testing.T) {
	rootAndLock(t)
	ctx := context.Background()
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	// A real leftover of a crashed earlier run on this machine (we hold the
	// lock, so no run is live) would make the staging below collide with it.
	if err := db.CleanupNetns(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("cleanup before staging: %v", err)
	}
	run("ip", "link", "add", "ojp-br0", "type", "bridge")
	run("ip", "netns", "add", "ojp-n9")
	run("ip", "link", "add", "ojp-n9-h", "type", "veth", "peer", "name", "ojp-n9-c")
	run("ip", "link", "set", "ojp-n9-c", "netns", "ojp-n9")
	run("iptables", "-I", "FORWARD", "-i", "ojp-br0", "-o", "ojp-br0", "-m", "comment", "--comment", db.RuleComment, "-j", "ACCEPT")
	sleeper := exec.Command("ip", "netns", "exec", "ojp-n9", "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sleeper.Wait() }()
	// A leftover process is inside its namespace; wait until this one is,
	// or cleanup could list the namespace before it joined and then miss it.
	joined := time.Now().Add(30 * time.Second)
	for {
		out, _ := exec.Command("ip", "netns", "pids", "ojp-n9").Output()
		if strings.TrimSpace(string(out)) != "" {
			break
		}
		if time.Now().After(joined) {
			t.Fatal("the staged process did not enter its namespace within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := db.CleanupNetns(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	select {
	case err := <-waited:
		t.Logf("the leftover process ended: %v", err) // killed by cleanup, as it should be
	case <-time.After(30 * time.Second):
		t.Fatal("the process in the leftover namespace survived cleanup")
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), "ojp-") {
		t.Fatalf("namespaces left: %s", out)
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], "ojp-") {
			t.Fatalf("link left: %s", l)
		}
	}
	out, _ = exec.Command("iptables", "-S", "FORWARD").Output()
	if strings.Contains(string(out), db.RuleComment) {
		t.Fatalf("rule left: %s", out)
	}
}

// TestShortRuns starts real clusters: an ordinary run must pass and a
// negative control must be caught, for the register and the enforcement
// workload. It is slow (about two minutes), so it runs only with
// OPTOUT_JEPSEN_INTEGRATION=1.
func TestShortRuns(t *testing.T) {
	if os.Getenv("OPTOUT_JEPSEN_INTEGRATION") != "1" {
		t.Skip("starts real clusters for a minute; set OPTOUT_JEPSEN_INTEGRATION=1 (as root) to run it")
	}
	rootAndLock(t)
	repo, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := BuildBinary(context.Background(), repo, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := RunConfig{Backend: "netns", Nodes: 3, Concurrency: 6, Keys: 4, Seed: 1, Binary: bin, OutRoot: t.TempDir(),
		Progress: os.Stderr, Log: slog.New(slog.NewTextHandler(os.Stderr, nil)), Time: 12 * time.Second}
	ok := cfg
	ok.Name, ok.Nemeses = "kill", []string{"kill"}
	res, err := Run(context.Background(), ok)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != "PASS" || res.Ops.Checked == 0 || len(res.Faults) == 0 {
		t.Fatalf("%s", res.SummaryLine())
	}
	if !res.Watch.Valid || res.Watch.Streams != 3 || res.Watch.Delivered == 0 || res.Watch.FinalIndex == 0 {
		t.Fatalf("the watch streams were not checked: %+v", res.Watch)
	}
	neg := cfg
	neg.Name, neg.Nemeses, neg.NegativeControl, neg.Keys = "negative", []string{"partition-leader"}, true, 3
	res, err = Run(context.Background(), neg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != "CAUGHT" {
		t.Fatalf("negative control not caught: %s", res.SummaryLine())
	}
	for _, f := range []string{"history.jsonl", "results.json", "report.html", "latency.png", "rate.png"} {
		if st, err := os.Stat(res.Dir + "/" + f); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}

	enf := cfg
	enf.Name, enf.Nemeses, enf.Workload = "enforce", []string{"kill"}, WorkloadEnforce
	res, err = Run(context.Background(), enf)
	if err != nil {
		t.Fatal(err)
	}
	e := res.Enforce
	if res.Verdict != "PASS" || e == nil || e.Processed == 0 || e.Planted == 0 || e.PlantedFlagged != e.Planted || e.ForgedRefused == 0 ||
		e.Violations == 0 || e.Stored != e.Violations || res.EnforceQueue == nil || res.EnforceQueue.Duplicates == 0 {
		t.Fatalf("%s\n%+v", res.SummaryLine(), e)
	}
	enfNeg := enf
	enfNeg.Name, enfNeg.NegativeControl = "enforce-negative", true
	res, err = Run(context.Background(), enfNeg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != "CAUGHT" || slices.Contains(res.ServerArgs, "--unsafe-stale-reads-for-chaos-tests") {
		t.Fatalf("enforcement negative control not caught: %s", res.SummaryLine())
	}
}
