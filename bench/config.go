package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Workload names, in the order they run inside one cluster's lifetime.
const (
	wlReads    = "reads"
	wlWrites   = "writes"
	wlCAS      = "cas"
	wlFailover = "failover"
)

var allWorkloads = []string{wlReads, wlWrites, wlCAS, wlFailover}

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

// Config is the whole run, as the flags set it.
type Config struct {
	Workloads       []string      `json:"workloads"`
	Rounds          int           `json:"rounds"`
	Duration        time.Duration `json:"duration_ns"`
	Warmup          time.Duration `json:"warmup_ns"`
	Concurrency     int           `json:"concurrency"`
	Keys            int           `json:"keys"`
	FailoverSamples int           `json:"failover_samples"`
	Target          string        `json:"target"`
	EtcdTiming      string        `json:"etcd_timing"`
	OpTimeout       time.Duration `json:"op_timeout_ns"`
	Systems         []string      `json:"systems"`
	Quick           bool          `json:"quick"`
	OutDir          string        `json:"-"`
	Repo            string        `json:"-"`
	OptoutdBin      string        `json:"-"`
	OptoutdRev      string        `json:"optoutd_rev"`
	// BaseRev is the revision the second optoutd system, optoutd-base,
	// is built from; set only when --systems names it.
	BaseRev string `json:"base_rev,omitempty"`
	// ClientHTTP1: optoutd systems whose clients speak HTTP/1.1 instead
	// of the client's default, h2c.
	ClientHTTP1 []string `json:"client_http1,omitempty"`
	NoCharts    bool     `json:"-"`
}

// DefaultConfig is a full run: 5 rounds of 10 s per workload.
func DefaultConfig() Config {
	return Config{
		Workloads:       append([]string(nil), allWorkloads...),
		Rounds:          5,
		Duration:        10 * time.Second,
		Warmup:          time.Second,
		Concurrency:     32,
		Keys:            10000,
		FailoverSamples: 3,
		Target:          targetAll,
		EtcdTiming:      etcdTimingMatched,
		OpTimeout:       5 * time.Second,
		Systems:         []string{sysOptoutd, sysEtcd},
		OutDir:          "results",
		Repo:            "..",
		OptoutdRev:      "HEAD",
	}
}

// quickConfig is what --quick changes, unless a flag says otherwise.
func applyQuick(c *Config, set map[string]bool) {
	if !set["rounds"] {
		c.Rounds = 1
	}
	if !set["duration"] {
		c.Duration = 2 * time.Second
	}
	if !set["warmup"] {
		c.Warmup = 500 * time.Millisecond
	}
	if !set["keys"] {
		c.Keys = 1000
	}
	if !set["failover-samples"] {
		c.FailoverSamples = 1
	}
}

// parseFlags parses the command line (without the program name).
func parseFlags(args []string, stderr io.Writer) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workloads := fs.String("workloads", strings.Join(allWorkloads, ","), "comma-separated workloads: "+strings.Join(allWorkloads, ", "))
	systems := fs.String("systems", strings.Join(c.Systems, ","), "comma-separated systems to run: optoutd and etcd, or optoutd and optoutd-base (ratios are optoutd / the other)")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "rounds; each round runs every system once, alternating which goes first")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measured time of each throughput workload per system per round")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "unmeasured load before each throughput workload")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "concurrent clients (closed loop), the same for both systems")
	fs.IntVar(&c.Keys, "keys", c.Keys, "pre-loaded keys that reads and writes pick from uniformly")
	fs.IntVar(&c.FailoverSamples, "failover-samples", c.FailoverSamples, "leader kills per system per round")
	fs.StringVar(&c.Target, "target", c.Target, "where clients send requests: all (spread over the 3 nodes), leader, followers")
	fs.StringVar(&c.EtcdTiming, "etcd-timing", c.EtcdTiming, "etcd heartbeat/election: matched (50ms/500ms, like optoutd's defaults) or default (100ms/1000ms)")
	fs.DurationVar(&c.OpTimeout, "op-timeout", c.OpTimeout, "deadline of each request")
	fs.BoolVar(&c.Quick, "quick", false, "smoke run: 1 round, 2s, 1000 keys, 1 failover sample (explicit flags win)")
	fs.StringVar(&c.OutDir, "out", c.OutDir, "parent directory of the results/<timestamp>/ directory")
	fs.StringVar(&c.Repo, "repo", c.Repo, "optoutd repository root to build cmd/optoutd from")
	fs.StringVar(&c.OptoutdRev, "optoutd-rev", c.OptoutdRev, "git revision of --repo to build optoutd from, or \"worktree\" for the working tree as it is")
	fs.StringVar(&c.OptoutdBin, "optoutd-bin", "", "use this optoutd binary instead of building one")
	fs.StringVar(&c.BaseRev, "base-rev", "", "git revision of --repo to build the optoutd-base system from (required with --systems optoutd,optoutd-base)")
	clientHTTP1 := fs.String("client-http1", "", "comma-separated optoutd systems (optoutd, optoutd-base) whose clients use HTTP/1.1 instead of h2c")
	fs.BoolVar(&c.NoCharts, "no-charts", false, "skip the PNG charts")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.Quick {
		applyQuick(&c, set)
	}
	c.Workloads = splitList(*workloads)
	c.Systems = splitList(*systems)
	c.ClientHTTP1 = splitList(*clientHTTP1)
	return c, c.Validate()
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

// Validate reports the first bad setting, naming its flag.
func (c *Config) Validate() error {
	if err := checkNames("--workloads", c.Workloads, allWorkloads); err != nil {
		return err
	}
	if err := checkNames("--systems", c.Systems, allSystems); err != nil {
		return err
	}
	if err := c.validatePair(); err != nil {
		return err
	}
	for _, s := range c.ClientHTTP1 {
		if !slices.Contains(c.Systems, s) || s == sysEtcd {
			return fmt.Errorf("--client-http1: %q is not an optoutd system in --systems %s", s, strings.Join(c.Systems, ","))
		}
	}
	switch {
	case c.Rounds < 1 || c.Rounds > 100:
		return fmt.Errorf("--rounds: %d must be between 1 and 100", c.Rounds)
	case c.Duration < 100*time.Millisecond || c.Duration > time.Hour:
		return fmt.Errorf("--duration: %v must be between 100ms and 1h", c.Duration)
	case c.Warmup < 0 || c.Warmup > 10*time.Minute:
		return fmt.Errorf("--warmup: %v must be between 0 and 10m", c.Warmup)
	case c.Concurrency < 1 || c.Concurrency > 1024:
		return fmt.Errorf("--concurrency: %d must be between 1 and 1024", c.Concurrency)
	case c.Keys < 1 || c.Keys > 10_000_000:
		return fmt.Errorf("--keys: %d must be between 1 and 10000000", c.Keys)
	case c.FailoverSamples < 1 || c.FailoverSamples > 100:
		return fmt.Errorf("--failover-samples: %d must be between 1 and 100", c.FailoverSamples)
	case c.OpTimeout < 10*time.Millisecond:
		return fmt.Errorf("--op-timeout: %v must be at least 10ms", c.OpTimeout)
	case c.OutDir == "":
		return errors.New("--out: must not be empty")
	case c.OptoutdRev == "" || strings.HasPrefix(c.OptoutdRev, "-"):
		return fmt.Errorf("--optoutd-rev: %q is not a revision", c.OptoutdRev)
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
