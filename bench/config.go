package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Key distributions.
const (
	distUniform = "uniform"
	distZipf    = "zipf"
)

var allDists = []string{distUniform, distZipf}

// Targets: which nodes the clients send their requests to first.
const (
	targetAll       = "all"
	targetLeader    = "leader"
	targetFollowers = "followers"
)

// revWorktree builds optoutd from the working tree instead of a commit.
const revWorktree = "worktree"

// etcd timing presets.
const (
	etcdTimingMatched = "matched"
	etcdTimingDefault = "default"
)

// maxConcurrency bounds every concurrency flag.
const maxConcurrency = 1024

// maxBatch is optoutd's CheckBatch limit (optoutd.MaxBatchChecks).
const maxBatch = 1000

// Config is the whole run, as the flags set it.
type Config struct {
	Workloads []string `json:"workloads"`
	// Dists are the key distributions each throughput workload runs with.
	Dists     []string `json:"dists"`
	ZipfTheta float64  `json:"zipf_theta"`
	// Concurrency is the sweep: each throughput workload runs once per
	// value, with that many closed-loop clients.
	Concurrency         []int         `json:"concurrency"`
	BatchSize           int           `json:"batch_size"`
	Rounds              int           `json:"rounds"`
	Duration            time.Duration `json:"duration_ns"`
	Warmup              time.Duration `json:"warmup_ns"`
	Keys                int           `json:"keys"`
	FailoverSamples     int           `json:"failover_samples"`
	FailoverConcurrency int           `json:"failover_concurrency"`
	Target              string        `json:"target"`
	EtcdTiming          string        `json:"etcd_timing"`
	OpTimeout           time.Duration `json:"op_timeout_ns"`
	Systems             []string      `json:"systems"`
	Quick               bool          `json:"quick"`
	OutDir              string        `json:"-"`
	Repo                string        `json:"-"`
	OptoutdBin          string        `json:"-"`
	OptoutdRev          string        `json:"optoutd_rev"`
	// BaseRev is the revision the second optoutd system, optoutd-base,
	// is built from; set only when --systems names it.
	BaseRev string `json:"base_rev,omitempty"`
	// ClientH2C: optoutd systems whose clients speak h2c instead of the
	// client's default, HTTP/1.1.
	ClientH2C []string `json:"client_h2c,omitempty"`
	NoCharts  bool     `json:"-"`
	// PprofDir: optoutd nodes run with --debug-addr and a CPU profile of
	// every node is saved here for every measured optoutd cell.
	PprofDir string `json:"-"`
}

// DefaultConfig is the full sweep of issue 11: every workload, uniform and
// Zipf keys, 1 to 256 clients, 3 rounds of 10 s per cell and system.
func DefaultConfig() Config {
	return Config{
		Workloads:           slices.Clone(defaultWorkloads),
		Dists:               slices.Clone(allDists),
		ZipfTheta:           0.99,
		Concurrency:         []int{1, 16, 64, 256},
		BatchSize:           100,
		Rounds:              3,
		Duration:            10 * time.Second,
		Warmup:              time.Second,
		Keys:                20000,
		FailoverSamples:     3,
		FailoverConcurrency: 32,
		Target:              targetAll,
		EtcdTiming:          etcdTimingMatched,
		OpTimeout:           5 * time.Second,
		Systems:             []string{sysOptoutd, sysEtcd},
		OutDir:              "results",
		Repo:                "..",
		OptoutdRev:          "HEAD",
	}
}

// applyQuick is what --quick changes, unless a flag says otherwise: every
// workload (the enforcement ones too) and distribution once, at 1 and 8
// clients, briefly.
func applyQuick(c *Config, set map[string]bool) {
	if !set["workloads"] {
		c.Workloads = slices.Clone(allWorkloads)
	}
	if !set["rounds"] {
		c.Rounds = 1
	}
	if !set["duration"] {
		c.Duration = 500 * time.Millisecond
	}
	if !set["warmup"] {
		c.Warmup = 200 * time.Millisecond
	}
	if !set["keys"] {
		c.Keys = 1000
	}
	if !set["concurrency"] {
		c.Concurrency = []int{1, 8}
	}
	if !set["failover-samples"] {
		c.FailoverSamples = 1
	}
	if !set["failover-concurrency"] {
		c.FailoverConcurrency = 8
	}
}

// parseFlags parses the command line (without the program name).
func parseFlags(args []string, stderr io.Writer) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workloads := fs.String("workloads", strings.Join(defaultWorkloads, ","), "comma-separated workloads: "+strings.Join(allWorkloads, ", ")+
		"; enforcement (the last six) and all name groups (reads and writes: old names of check and set); --quick runs all")
	dists := fs.String("dist", strings.Join(c.Dists, ","), "comma-separated key distributions: uniform, zipf")
	conc := fs.String("concurrency", joinInts(c.Concurrency), "comma-separated closed-loop client counts to sweep, the same for both systems")
	systems := fs.String("systems", strings.Join(c.Systems, ","), "comma-separated systems to run: optoutd and etcd, or optoutd and optoutd-base (ratios are optoutd / the other)")
	fs.Float64Var(&c.ZipfTheta, "zipf-theta", c.ZipfTheta, "skew of --dist zipf (YCSB's is 0.99): the key of rank r is picked with weight 1/r^theta")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "checks per call in the batch workload (etcd: Gets per Txn), reports per call in report-batch (etcd: Puts per Txn)")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "rounds; in each, every cell runs every system once, alternating which goes first")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measured time of each cell per system per round")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "unmeasured load before each cell")
	fs.IntVar(&c.Keys, "keys", c.Keys, "pre-loaded keys that every workload picks from")
	fs.IntVar(&c.FailoverSamples, "failover-samples", c.FailoverSamples, "leader kills per system per round")
	fs.IntVar(&c.FailoverConcurrency, "failover-concurrency", c.FailoverConcurrency, "clients (half writing, half reading) during a failover sample")
	fs.StringVar(&c.Target, "target", c.Target, "where clients send requests: all (spread over the 3 nodes), leader, followers")
	fs.StringVar(&c.EtcdTiming, "etcd-timing", c.EtcdTiming, "etcd heartbeat/election: matched (50ms/500ms, like optoutd's defaults) or default (100ms/1000ms)")
	fs.DurationVar(&c.OpTimeout, "op-timeout", c.OpTimeout, "deadline of each request")
	fs.BoolVar(&c.Quick, "quick", false, "smoke run: 1 round, 0.5s cells at 1 and 8 clients, 1000 keys, 1 failover sample (explicit flags win)")
	fs.StringVar(&c.OutDir, "out", c.OutDir, "parent directory of the results/<timestamp>/ directory")
	fs.StringVar(&c.Repo, "repo", c.Repo, "optoutd repository root to build cmd/optoutd from")
	fs.StringVar(&c.OptoutdRev, "optoutd-rev", c.OptoutdRev, "git revision of --repo to build optoutd from, or \"worktree\" for the working tree as it is")
	fs.StringVar(&c.OptoutdBin, "optoutd-bin", "", "use this optoutd binary instead of building one")
	fs.StringVar(&c.BaseRev, "base-rev", "", "git revision of --repo to build the optoutd-base system from (required with --systems optoutd,optoutd-base)")
	clientH2C := fs.String("client-h2c", "", "comma-separated optoutd systems (optoutd, optoutd-base) whose clients use h2c instead of HTTP/1.1")
	clientHTTP1 := fs.String("client-http1", "", "optoutd systems whose clients use HTTP/1.1: the client's default now, so only checked (kept for old commands)")
	fs.BoolVar(&c.NoCharts, "no-charts", false, "skip the PNG charts")
	fs.StringVar(&c.PprofDir, "pprof", "", "save a CPU profile of every optoutd node for every measured cell in this directory (nodes run with --debug-addr)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["concurrency"] {
		v, err := parseInts(*conc)
		if err != nil {
			return c, fmt.Errorf("--concurrency: %w", err)
		}
		c.Concurrency = v
	}
	c.Workloads = resolveAliases(splitList(*workloads))
	if c.Quick {
		applyQuick(&c, set)
	}
	c.Dists = splitList(*dists)
	c.Systems = splitList(*systems)
	c.ClientH2C = splitList(*clientH2C)
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, checkClientSystems("--client-http1", splitList(*clientHTTP1), c.Systems)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseInts reads "1,16,64" (in any order); it sorts them.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", p)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%d named twice", n)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("must name at least one client count")
	}
	slices.Sort(out)
	return out, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// Validate reports the first bad setting, naming its flag.
func (c *Config) Validate() error {
	if err := checkNames("--workloads", c.Workloads, allWorkloads); err != nil {
		return err
	}
	if err := checkNames("--dist", c.Dists, allDists); err != nil {
		return err
	}
	if err := checkNames("--systems", c.Systems, allSystems); err != nil {
		return err
	}
	if err := c.validatePair(); err != nil {
		return err
	}
	if err := checkClientSystems("--client-h2c", c.ClientH2C, c.Systems); err != nil {
		return err
	}
	if err := c.validateNumbers(); err != nil {
		return err
	}
	switch c.Target {
	case targetAll, targetLeader, targetFollowers:
	default:
		return fmt.Errorf("--target: %q must be one of all, leader, followers", c.Target)
	}
	switch c.EtcdTiming {
	case etcdTimingMatched, etcdTimingDefault:
	default:
		return fmt.Errorf("--etcd-timing: %q must be matched or default", c.EtcdTiming)
	}
	if c.OptoutdBin != "" {
		if st, err := os.Stat(c.OptoutdBin); err != nil || st.IsDir() {
			return fmt.Errorf("--optoutd-bin: %q is not a file", c.OptoutdBin)
		}
	}
	if c.OptoutdBin == "" || slices.Contains(c.Systems, sysOptoutdBase) {
		if st, err := os.Stat(c.Repo + "/cmd/optoutd"); err != nil || !st.IsDir() {
			return fmt.Errorf("--repo: %q has no cmd/optoutd (run from bench/ or pass --repo or --optoutd-bin)", c.Repo)
		}
	}
	return nil
}

func (c *Config) validateNumbers() error {
	if len(c.Concurrency) == 0 {
		return errors.New("--concurrency: must name at least one client count")
	}
	for _, n := range c.Concurrency {
		if n < 1 || n > maxConcurrency {
			return fmt.Errorf("--concurrency: %d must be between 1 and %d", n, maxConcurrency)
		}
	}
	switch {
	case c.Rounds < 1 || c.Rounds > 100:
		return fmt.Errorf("--rounds: %d must be between 1 and 100", c.Rounds)
	case c.Duration < 100*time.Millisecond || c.Duration > time.Hour:
		return fmt.Errorf("--duration: %v must be between 100ms and 1h", c.Duration)
	case c.Warmup < 0 || c.Warmup > 10*time.Minute:
		return fmt.Errorf("--warmup: %v must be between 0 and 10m", c.Warmup)
	case !(c.ZipfTheta >= 0.01 && c.ZipfTheta <= 0.999):
		return fmt.Errorf("--zipf-theta: %v must be between 0.01 and 0.999", c.ZipfTheta)
	case c.BatchSize < 1 || c.BatchSize > maxBatch:
		return fmt.Errorf("--batch-size: %d must be between 1 and %d", c.BatchSize, maxBatch)
	case c.Keys < 1 || c.Keys > 10_000_000:
		return fmt.Errorf("--keys: %d must be between 1 and 10000000", c.Keys)
	case c.FailoverSamples < 1 || c.FailoverSamples > 100:
		return fmt.Errorf("--failover-samples: %d must be between 1 and 100", c.FailoverSamples)
	case c.FailoverConcurrency < 2 || c.FailoverConcurrency > maxConcurrency:
		return fmt.Errorf("--failover-concurrency: %d must be between 2 and %d", c.FailoverConcurrency, maxConcurrency)
	case c.OpTimeout < 10*time.Millisecond || c.OpTimeout > 10*time.Minute:
		return fmt.Errorf("--op-timeout: %v must be between 10ms and 10m", c.OpTimeout)
	case c.has(wlImport) && c.BatchSize > c.Keys:
		return fmt.Errorf("--batch-size: %d is more than --keys %d; import writes that many distinct keys per call", c.BatchSize, c.Keys)
	case c.has(wlReportBatch) && c.BatchSize > c.Keys:
		return fmt.Errorf("--batch-size: %d is more than --keys %d; report-batch reports on that many distinct subjects per call", c.BatchSize, c.Keys)
	case c.OutDir == "":
		return errors.New("--out: must not be empty")
	case c.OptoutdRev == "" || strings.HasPrefix(c.OptoutdRev, "-"):
		return fmt.Errorf("--optoutd-rev: %q is not a revision", c.OptoutdRev)
	}
	return nil
}

// checkClientSystems: every name is an optoutd system that runs.
func checkClientSystems(flagName string, names, systems []string) error {
	for _, s := range names {
		if !slices.Contains(systems, s) || s == sysEtcd {
			return fmt.Errorf("%s: %q is not an optoutd system in --systems %s", flagName, s, strings.Join(systems, ","))
		}
	}
	return nil
}

// validatePair checks the systems against each other and --base-rev:
// ratios are always optoutd / the other system, so two systems must
// include optoutd, and optoutd-base exists only to be built from
// --base-rev.
func (c *Config) validatePair() error {
	base := slices.Contains(c.Systems, sysOptoutdBase)
	switch {
	case len(c.Systems) > 2:
		return fmt.Errorf("--systems: %q: at most two systems, optoutd and the one it is compared with", strings.Join(c.Systems, ","))
	case len(c.Systems) == 2 && !slices.Contains(c.Systems, sysOptoutd):
		return fmt.Errorf("--systems: %q: a pair must include optoutd (ratios are optoutd / the other)", strings.Join(c.Systems, ","))
	case base && c.BaseRev == "":
		return fmt.Errorf("--base-rev: required with --systems %s (the revision to build it from, e.g. bench-pre-domain)", strings.Join(c.Systems, ","))
	case !base && c.BaseRev != "":
		return fmt.Errorf("--base-rev: set, but --systems %s does not include %s", strings.Join(c.Systems, ","), sysOptoutdBase)
	case base && strings.HasPrefix(c.BaseRev, "-"):
		return fmt.Errorf("--base-rev: %q is not a revision", c.BaseRev)
	}
	return nil
}

// pair is the two systems a ratio is formed from, optoutd first; ok is
// false unless two systems run.
func (c *Config) pair() (a, b string, ok bool) {
	if len(c.Systems) != 2 {
		return "", "", false
	}
	b = c.Systems[0]
	if b == sysOptoutd {
		b = c.Systems[1]
	}
	return sysOptoutd, b, true
}

func checkNames(flagName string, got, known []string) error {
	if len(got) == 0 {
		return fmt.Errorf("%s: must name at least one of %s", flagName, strings.Join(known, ", "))
	}
	seen := map[string]bool{}
	for _, g := range got {
		if !slices.Contains(known, g) {
			return fmt.Errorf("%s: unknown %q (known: %s)", flagName, g, strings.Join(known, ", "))
		}
		if seen[g] {
			return fmt.Errorf("%s: %q named twice", flagName, g)
		}
		seen[g] = true
	}
	return nil
}

// has reports whether workload w was asked for.
func (c *Config) has(w string) bool { return slices.Contains(c.Workloads, w) }
