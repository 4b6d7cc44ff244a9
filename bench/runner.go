package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// RoundResult is every system's run in one round.
type RoundResult struct {
	Round   int                     `json:"round"`
	Order   []string                `json:"order"`
	Systems map[string]*SystemRound `json:"systems"`
}

// SystemRound is one cluster's lifetime: start, preload, the throughput
// workloads in order, then the failover samples.
type SystemRound struct {
	StartupSeconds float64                 `json:"startup_seconds"`
	PreloadSeconds float64                 `json:"preload_seconds"`
	Workloads      map[string]*WorkloadRun `json:"workloads"`
	Failover       []FailoverSample        `json:"failover,omitempty"`
	Error          string                  `json:"error,omitempty"`
	Note           string                  `json:"note,omitempty"`
}

type runner struct {
	cfg    Config
	prog   *progress
	builds map[string]optoutdBuild
	self   string
	keys   []string
}

// starter is a System that has something to say about how it started.
type starter interface{ StartNote() string }

// roundOrder alternates which system goes first (ABBA...), so drift and
// warm caches favour neither.
func roundOrder(systems []string, round int) []string {
	order := slices.Clone(systems)
	if round%2 == 0 {
		slices.Reverse(order)
	}
	return order
}

func (r *runner) runAll(ctx context.Context, res *Results) error {
	var errs []error
	for round := 1; round <= r.cfg.Rounds; round++ {
		rr := &RoundResult{Round: round, Order: roundOrder(r.cfg.Systems, round), Systems: map[string]*SystemRound{}}
		res.Rounds = append(res.Rounds, rr)
		for _, name := range rr.Order {
			prefix := fmt.Sprintf("[round %d/%d %-*s]", round, r.cfg.Rounds, nameWidth(r.cfg.Systems), name)
			sr, err := r.runSystem(ctx, name, prefix)
			rr.Systems[name] = sr
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				sr.Error = err.Error()
				r.prog.logf("%s FAILED: %v", prefix, err)
				errs = append(errs, fmt.Errorf("round %d %s: %w", round, name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// nameWidth pads system names in progress lines: 7 ("optoutd") at least.
func nameWidth(systems []string) int {
	w := 7
	for _, s := range systems {
		w = max(w, len(s))
	}
	return w
}

// runSystem runs one cluster's lifetime in a fresh temp dir and removes
// it, killing every node, whatever happens.
func (r *runner) runSystem(ctx context.Context, name, prefix string) (sr *SystemRound, err error) {
	sr = &SystemRound{Workloads: map[string]*WorkloadRun{}}
	dir, err := os.MkdirTemp("", "optoutd-bench-"+name+"-")
	if err != nil {
		return sr, err
	}
	defer os.RemoveAll(dir)
	sys, err := newSystem(name, r.cfg, r.builds, r.self)
	if err != nil {
		return sr, err
	}
	defer sys.Close()

	t := time.Now()
	r.prog.step(prefix, "starting 3 nodes", 0, nil)
	if err := sys.Start(ctx, dir); err != nil {
		return sr, err
	}
	sr.StartupSeconds = time.Since(t).Seconds()
	if st, ok := sys.(starter); ok && st.StartNote() != "" {
		sr.Note = st.StartNote()
		r.prog.logf("%s %s", prefix, sr.Note)
	}

	allOps, err := sys.Clients(ctx, targetAll)
	if err != nil {
		return sr, err
	}
	ops := allOps
	if r.cfg.Target != targetAll {
		if ops, err = sys.Clients(ctx, r.cfg.Target); err != nil {
			return sr, err
		}
	}

	var loaded atomic.Int64
	t = time.Now()
	r.prog.step(prefix, fmt.Sprintf("preloading %d keys", len(r.keys)), 0, &loaded)
	if err := preload(ctx, allOps, r.keys, r.cfg.Concurrency, r.cfg.OpTimeout, &loaded); err != nil {
		return sr, err
	}
	sr.PreloadSeconds = time.Since(t).Seconds()
	r.prog.logf("%s started in %.1fs, preloaded %d keys in %.1fs", prefix, sr.StartupSeconds, len(r.keys), sr.PreloadSeconds)

	for _, wl := range []string{wlReads, wlWrites, wlCAS} {
		if !r.cfg.has(wl) {
			continue
		}
		var op opFunc
		switch wl {
		case wlReads:
			op = readOp(ops, r.keys, r.cfg.Concurrency)
		case wlWrites:
			op = writeOp(ops, r.keys, r.cfg.Concurrency)
		case wlCAS:
			op = casOp(ops, r.cfg.Concurrency)
		}
		var n atomic.Int64
		r.prog.step(prefix, wl, r.cfg.Warmup+r.cfg.Duration, &n)
		nodes := sys.PIDs()
		self := os.Getpid()
		before := readCPU(append([]int{self}, nodes...))
		run := closedLoop(ctx, r.cfg.Concurrency, r.cfg.Warmup, r.cfg.Duration, r.cfg.OpTimeout, &n, op)
		run.CPU = cpuUsage(before, readCPU(append([]int{self}, nodes...)), nodes, self, n.Load())
		if ctx.Err() != nil {
			return sr, ctx.Err() // an interrupted run is not a measurement
		}
		sr.Workloads[wl] = run
		if err := sys.Check(); err != nil {
			return sr, err
		}
		r.prog.logf("%s %-8s %9.0f ops/s  p50 %7.2f ms  p99 %7.2f ms  errors %d  node CPU %.0f µs/op  other load %.1f cores  IO pressure %s%s", prefix, wl,
			run.OpsPerSec, run.Latency.P50Ms, run.Latency.P99Ms, run.Errors, run.CPU.NodeCPUPerOpUs, run.CPU.OtherCores, ioCell(run), firstErrNote(run))
	}

	if r.cfg.has(wlFailover) {
		for n := 1; n <= r.cfg.FailoverSamples; n++ {
			r.prog.step(prefix, fmt.Sprintf("failover %d/%d", n, r.cfg.FailoverSamples), 0, nil)
			s, err := failoverSample(ctx, sys, allOps, r.keys, r.cfg, n)
			if ctx.Err() != nil {
				return sr, ctx.Err()
			}
			sr.Failover = append(sr.Failover, s) // measured, even if the restart after it failed
			if err != nil {
				return sr, fmt.Errorf("failover sample %d: %w", n, err)
			}
			note := ""
			if s.TimedOut {
				note = " (TIMED OUT)"
			}
			r.prog.logf("%s failover %d/%d killed %s: leader seen after %.0f ms, writes back after %.0f ms, reads after %.0f ms (load clients: %.0f / %.0f ms), new leader %s%s",
				prefix, n, r.cfg.FailoverSamples, s.Killed, s.LeaderElectedMs, s.WriteUnavailableMs, s.ReadUnavailableMs, s.LoadWriteRecoveryMs, s.LoadReadRecoveryMs, s.NewLeader, note)
		}
	}
	return sr, nil
}

func firstErrNote(run *WorkloadRun) string {
	if run.FirstError == "" {
		return ""
	}
	e := run.FirstError
	if len(e) > 120 {
		e = e[:120] + "..."
	}
	return " (first: " + e + ")"
}

// buildOptoutd builds cmd/optoutd with the product's own go.mod into a temp
// dir that the returned func removes. rev "worktree" builds the working
// tree as it is; any other rev is exported with git archive first, so
// concurrent edits in the working tree do not leak into the measurement.
// flagName names the flag that chose rev, for errors.
func buildOptoutd(ctx context.Context, repo, rev, flagName string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "optoutd-bench-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	src := repo
	if rev != revWorktree {
		src = filepath.Join(dir, "src")
		if err := os.Mkdir(src, 0o755); err != nil {
			cleanup()
			return "", nil, err
		}
		sh := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", repo, rev, src)
		if out, err := sh.CombinedOutput(); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("%s: git archive %s: %w\n%s", flagName, rev, err, out)
		}
	}
	bin := filepath.Join(dir, "optoutd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/optoutd")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("%s: go build ./cmd/optoutd at %s: %w\n%s", flagName, rev, err, out)
	}
	return bin, cleanup, nil
}

// pinRev resolves rev to the full hash of its commit, once, so that the
// build and the report name the same commit even when the branch moves
// meanwhile (others commit to this repository during runs). "worktree"
// stays as it is.
func pinRev(ctx context.Context, repo, rev, flagName string) (string, error) {
	if rev == revWorktree {
		return rev, nil
	}
	out, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "--verify", "--quiet", rev+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("%s: %q is not a commit of %s: %w", flagName, rev, repo, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// gitDescribe names the optoutd commit measured; for the working tree it
// adds +dirty when product files differ from HEAD.
func gitDescribe(repo, rev string) string {
	r := rev
	if rev == revWorktree {
		r = "HEAD"
	}
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short=12", r+"^{commit}").Output()
	if err != nil {
		return rev
	}
	desc := strings.TrimSpace(string(out))
	if rev != revWorktree {
		return desc
	}
	st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--", ".", ":!bench", ":!docs").Output()
	if err == nil && len(strings.TrimSpace(string(st))) > 0 {
		desc += "+dirty (working tree)"
	}
	return desc
}
