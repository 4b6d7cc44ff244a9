package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/optoutd/optoutd/jepsen"
	"github.com/optoutd/optoutd/jepsen/db"
	"github.com/optoutd/optoutd/jepsen/nemesis"
	"github.com/optoutd/optoutd/jepsen/report"
	"github.com/peterbourgon/ff/v3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain(os.Stdout, os.Stderr)
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "optout-jepsen:", err)
		}
		os.Exit(2)
	}
	code := m.Run(ctx)
	stop()
	os.Exit(code)
}

// Main is the program: ParseFlags, then Run.
type Main struct {
	Stdout, Stderr io.Writer
	fs             *flag.FlagSet

	nemeses, backend, tier, out, binary, image, logLevel, workload string
	time, checkTimeout                                             time.Duration
	nodes, concurrency, keys, negativeRuns                         int
	seed                                                           uint64
	long, negativeOnly, overlap, installDeps                       bool

	tc jepsen.TierConfig
}

// NewMain declares the flags.
func NewMain(stdout, stderr io.Writer) *Main {
	m := &Main{Stdout: stdout, Stderr: stderr, fs: flag.NewFlagSet("optout-jepsen", flag.ContinueOnError)}
	fs := m.fs
	fs.SetOutput(stderr)
	fs.StringVar(&m.nemeses, "nemesis", "", "comma-separated faults: "+strings.Join(nemesisNames(), ", "))
	fs.DurationVar(&m.time, "time", 0, "workload time per run (default 1m; 30s per nemesis with --tier ci; 2m with --long)")
	fs.StringVar(&m.backend, "backend", "netns", "netns (OS processes in network namespaces) or docker (containers of deploy/build-image.sh's image)")
	fs.IntVar(&m.nodes, "nodes", 5, "cluster size (at least 3)")
	fs.IntVar(&m.concurrency, "concurrency", 10, "client workers (worker i talks to node i mod --nodes)")
	fs.IntVar(&m.keys, "keys", 8, "register keys the workers contend on")
	fs.StringVar(&m.out, "out", "", "directory for run outputs (default <repo>/jepsen/runs)")
	fs.Uint64Var(&m.seed, "seed", 0, "random seed for schedules, targets and workload (default: from the clock, printed)")
	fs.BoolVar(&m.long, "long", false, "the long tier (same as --tier long): overlapping faults, minutes per nemesis")
	fs.StringVar(&m.workload, "workload", "", "single tier and --negative-control: "+strings.Join(jepsen.Workloads(), " or ")+
		" (default register: registers, set and watch streams; enforce: receipts, fencing, overrides and violation reports); ci and long run both")
	fs.StringVar(&m.tier, "tier", "", "single (one run of --nemesis), ci (each nemesis in turn + negative control) or long")
	fs.BoolVar(&m.overlap, "overlap", false, "single tier: let faults overlap")
	fs.IntVar(&m.negativeRuns, "negative-runs", -1, "negative-control runs to add (default 3 for ci and long, 0 for single)")
	fs.BoolVar(&m.negativeOnly, "negative-control", false, "run only the negative control (stale reads must be caught)")
	fs.StringVar(&m.binary, "binary", "", "netns: a prebuilt static optoutd (default: build ./cmd/optoutd)")
	fs.StringVar(&m.image, "image", "", "docker: an existing image (default: build optoutd:jepsen with deploy/build-image.sh)")
	fs.DurationVar(&m.checkTimeout, "check-timeout", time.Minute, "porcupine time limit per key and pass; a timeout fails the run")
	fs.StringVar(&m.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&m.installDeps, "install-deps", true, "as root, apt-get install nftables and iptables when missing")
	return m
}

func nemesisNames() []string {
	return nemesis.Names()
}

// ParseFlags parses args (flags may also come from OPTOUT_JEPSEN_* variables)
// and validates them.
func (m *Main) ParseFlags(args []string) error {
	if err := ff.Parse(m.fs, args, ff.WithEnvVarPrefix("OPTOUT_JEPSEN")); err != nil {
		return err
	}
	if m.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", m.fs.Args())
	}
	tier := m.tier
	switch {
	case m.long && tier != "" && tier != jepsen.TierLong:
		return fmt.Errorf("--long: conflicts with --tier %s", tier)
	case m.long:
		tier = jepsen.TierLong
	case tier == "":
		tier = jepsen.TierSingle
	}
	set := map[string]bool{}
	m.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["time"] && m.time <= 0 {
		return fmt.Errorf("--time: %v must be positive", m.time)
	}
	if m.seed == 0 {
		m.seed = uint64(time.Now().UnixNano())
	}
	var kinds []string
	for _, k := range strings.Split(m.nemeses, ",") {
		if k = strings.TrimSpace(k); k != "" {
			kinds = append(kinds, k)
		}
	}
	if tier == jepsen.TierSingle && len(kinds) == 0 && !m.negativeOnly {
		return errors.New("--nemesis: name at least one fault, or choose --tier ci / --long / --negative-control")
	}
	m.tc = jepsen.TierConfig{Tier: tier, Nemeses: kinds, Time: m.time, NegativeRuns: m.negativeRuns, NegativeOnly: m.negativeOnly, Workload: m.workload,
		Base: jepsen.RunConfig{Backend: m.backend, Nodes: m.nodes, Concurrency: m.concurrency, Keys: m.keys, Seed: m.seed,
			Overlap: m.overlap, OutRoot: m.out, Binary: m.binary, Image: m.image, CheckTimeout: m.checkTimeout}}
	if m.checkTimeout <= 0 {
		return fmt.Errorf("--check-timeout: %v must be positive", m.checkTimeout)
	}
	if _, err := m.tc.Runs(); err != nil { // validates every run, naming the flag
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(m.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %q is not debug, info, warn or error", m.logLevel)
	}
	return nil
}

// Run runs the tier and returns the exit code: 0 when every run met its
// expectation (or the harness cannot run here: SKIP), 1 otherwise.
func (m *Main) Run(ctx context.Context) int {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(m.logLevel))
	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: lv}))
	if code, done := m.preflight(ctx, log); done {
		return code
	}
	release, err := jepsen.Lock()
	if err != nil {
		fmt.Fprintln(m.Stderr, "optout-jepsen:", err)
		return 1
	}
	defer release()
	cleanup, err := m.prepare(ctx, log)
	defer cleanup()
	if err != nil {
		fmt.Fprintln(m.Stderr, "optout-jepsen:", err)
		return 1
	}
	fmt.Fprintf(m.Stdout, "optout-jepsen: tier %s, backend %s, %d nodes, seed %d (rerun with --seed %d)\n",
		m.tc.Tier, m.tc.Base.Backend, m.tc.Base.Nodes, m.tc.Base.Seed, m.tc.Base.Seed)
	tr, err := jepsen.RunTier(ctx, m.tc, m.Stdout)
	var skip *db.SkipError
	if errors.As(err, &skip) {
		fmt.Fprintln(m.Stdout, skip.Error())
		return 0
	}
	if err != nil {
		fmt.Fprintln(m.Stderr, "optout-jepsen:", err)
		return 1
	}
	status := "OK"
	if !tr.OK {
		status = "FAILED: " + strings.Join(tr.Failed, "; ")
	}
	fmt.Fprintf(m.Stdout, "optout-jepsen: %s tier %s: %d runs in %.0fs, negative control caught %s\n",
		status, tr.Tier, len(tr.Runs), tr.WallSeconds, tr.DetectionRate())
	if !tr.OK {
		return 1
	}
	return 0
}

// preflight checks root and tools; done reports that Run should return code.
func (m *Main) preflight(ctx context.Context, log *slog.Logger) (code int, done bool) {
	if os.Geteuid() == 0 && m.installDeps && !commandExists("nft") && commandExists("apt-get") {
		log.Info("nft is missing; installing nftables and iptables with apt-get")
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "nftables", "iptables")
		if out, err := cmd.CombinedOutput(); err != nil {
			log.Warn("apt-get install failed", "err", err, "output", string(out))
		}
	}
	var err error
	if m.tc.Base.Backend == "docker" {
		err = db.CheckDocker(ctx, log)
	} else {
		err = db.CheckNetns()
	}
	var skip *db.SkipError
	if errors.As(err, &skip) {
		fmt.Fprintln(m.Stdout, skip.Error())
		return 0, true
	}
	return 0, false
}

// prepare builds the binary or image and fills in defaults; cleanup
// removes what it built.
func (m *Main) prepare(ctx context.Context, log *slog.Logger) (cleanup func(), err error) {
	cleanup = func() {}
	err = m.prepareIn(ctx, log, &cleanup)
	return cleanup, err
}

func (m *Main) prepareIn(ctx context.Context, log *slog.Logger, cleanup *func()) error {
	b := &m.tc.Base
	b.Log, b.Progress, b.TTY = log, m.Stderr, isTTY(m.Stderr)
	wd, _ := os.Getwd()
	repo, repoErr := jepsen.RepoRoot(wd)
	if b.OutRoot == "" {
		if repoErr != nil {
			return fmt.Errorf("--out: %w", repoErr)
		}
		b.OutRoot = filepath.Join(repo, "jepsen", "runs")
	}
	if err := os.MkdirAll(b.OutRoot, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	switch {
	case b.Backend == "netns" && b.Binary == "":
		if repoErr != nil {
			return fmt.Errorf("--binary: %w", repoErr)
		}
		dir, err := os.MkdirTemp("", db.Prefix+"-bin-")
		if err != nil {
			return err
		}
		*cleanup = func() { _ = os.RemoveAll(dir) }
		log.Info("building optoutd", "dir", dir)
		if b.Binary, err = jepsen.BuildBinary(ctx, repo, dir); err != nil {
			return err
		}
	case b.Backend == "docker" && b.Image == "":
		if repoErr != nil {
			return fmt.Errorf("--image: %w", repoErr)
		}
		b.Image = "optoutd:jepsen"
		log.Info("building image with deploy/build-image.sh", "tag", b.Image)
		if err := jepsen.BuildImage(ctx, repo, b.Image); err != nil {
			return err
		}
	}
	return nil
}

func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && report.IsTerminal(f)
}

func commandExists(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}
