package jepsen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/optoutd/optoutd/jepsen/db"
	"github.com/optoutd/optoutd/jepsen/nemesis"
	"github.com/optoutd/optoutd/jepsen/report"
)

// Tiers.
const (
	TierSingle = "single" // one run of the nemeses given
	TierCI     = "ci"     // each nemesis in turn, one fault at a time, plus the negative control
	TierLong   = "long"   // each nemesis for minutes, overlapping with others, plus the negative control
)

// Tier defaults.
const (
	CITime       = 30 * time.Second
	LongTime     = 2 * time.Minute
	NegativeTime = 15 * time.Second
	// EnforceTime is the CI tier's enforcement run; its negative control
	// runs NegativeTime.
	EnforceTime = 25 * time.Second
)

// TierConfig describes a set of runs.
type TierConfig struct {
	Tier string
	// Base holds what every run shares (backend, nodes, concurrency,
	// keys, seed, output, binary, logging).
	Base RunConfig
	// Nemeses selects fault kinds (all when empty, for ci and long).
	Nemeses []string
	// Time per run; zero picks the tier's default.
	Time time.Duration
	// NegativeRuns is how many negative-control runs to add; negative
	// means the tier's default.
	NegativeRuns int
	// NegativeOnly runs only the negative control.
	NegativeOnly bool
	// Workload chooses the single tier's workload (and the negative
	// control's with NegativeOnly); ci and long run both.
	Workload string
}

// Runs expands a tier into its runs.
func (tc TierConfig) Runs() ([]RunConfig, error) {
	kinds := tc.Nemeses
	if len(kinds) == 0 && tc.Tier != TierSingle {
		kinds = nemesis.Names()
	}
	if len(kinds) == 0 && !tc.NegativeOnly {
		return nil, errors.New("--nemesis: name at least one fault (or use --tier ci)")
	}
	for _, k := range kinds {
		if _, err := nemesis.Lookup(k); err != nil {
			return nil, fmt.Errorf("--nemesis: %w", err)
		}
	}
	t, negRuns := tc.Time, tc.NegativeRuns
	switch tc.Tier {
	case TierSingle:
		t = orDuration(t, time.Minute)
		negRuns = orInt(negRuns, 0)
	case TierCI:
		t = orDuration(t, CITime)
		negRuns = orInt(negRuns, 3)
	case TierLong:
		t = orDuration(t, LongTime)
		negRuns = orInt(negRuns, 3)
	default:
		return nil, fmt.Errorf("--tier: %q is not single, ci or long", tc.Tier)
	}
	if t <= 0 {
		return nil, fmt.Errorf("--time: %v must be positive", t)
	}
	if tc.Workload != "" && tc.Workload != WorkloadRegister && tc.Workload != WorkloadEnforce {
		return nil, fmt.Errorf("--workload: unknown %q (choose %s or %s)", tc.Workload, WorkloadRegister, WorkloadEnforce)
	}
	if tc.Workload != "" && tc.Tier != TierSingle {
		return nil, fmt.Errorf("--workload: the %s tier runs every workload; use --tier single", tc.Tier)
	}
	if tc.NegativeOnly {
		kinds, negRuns = nil, max(negRuns, 1)
	}
	enforceOnly := tc.Workload == WorkloadEnforce
	var runs []RunConfig
	add := func(name string, ks []string, overlap bool, d time.Duration, seed uint64) {
		r := tc.Base
		r.Name, r.Nemeses, r.Overlap, r.Time, r.Seed = name, ks, overlap, d, seed
		if tc.Workload != "" {
			r.Workload = tc.Workload
		}
		runs = append(runs, r)
	}
	switch {
	case tc.Tier == TierSingle && len(kinds) > 0:
		add(strings.Join(kinds, "+"), kinds, tc.Base.Overlap, t, tc.Base.Seed)
	case tc.Tier == TierCI:
		for i, k := range kinds {
			add(k, []string{k}, false, t, tc.Base.Seed+uint64(i))
		}
	case tc.Tier == TierLong:
		all := nemesis.Names()
		for i, k := range kinds {
			// The nemesis under test twice as often as a partner kind,
			// faults overlapping.
			partner := all[(slices.Index(all, k)+1)%len(all)]
			add(k+"-overlap", []string{k, k, partner}, true, t, tc.Base.Seed+uint64(i))
		}
	}
	for i := range negRuns {
		r := tc.Base
		r.Name = fmt.Sprintf("negative-control-%d", i+1)
		r.Nemeses, r.Overlap, r.Time = []string{"partition-leader"}, false, min(t, NegativeTime)
		if tc.Tier == TierSingle && tc.Time > 0 {
			r.Time = tc.Time
		}
		r.NegativeControl, r.Keys, r.Seed = true, 3, tc.Base.Seed+1000+uint64(i)
		if enforceOnly {
			r.Name, r.Nemeses, r.Workload = fmt.Sprintf("enforce-negative-control-%d", i+1), enforceNegativeNemeses, WorkloadEnforce
		}
		runs = append(runs, r)
	}
	if tc.Tier != TierSingle && !tc.NegativeOnly {
		runs = append(runs, tc.enforceRuns(t)...)
	}
	for i := range runs {
		if err := runs[i].Validate(); err != nil {
			return nil, err
		}
		if _, err := runs[i].schedule(); err != nil {
			return nil, fmt.Errorf("run %s: %w", runs[i].Name, err)
		}
	}
	return runs, nil
}

func orDuration(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

func orInt(v, d int) int {
	if v < 0 {
		return d
	}
	return v
}

// TierResult summarises a tier.
type TierResult struct {
	Tier           string            `json:"tier"`
	Started        time.Time         `json:"started"`
	WallSeconds    float64           `json:"wall_s"`
	Runs           []*report.Results `json:"runs"`
	Failed         []string          `json:"failed,omitempty"`
	NegativeRuns   int               `json:"negative_control_runs"`
	NegativeCaught int               `json:"negative_control_caught"`
	// The enforcement workload's negative controls, counted apart.
	EnforceNegativeRuns   int  `json:"enforce_negative_control_runs"`
	EnforceNegativeCaught int  `json:"enforce_negative_control_caught"`
	OK                    bool `json:"ok"`
}

// DetectionRate is caught/runs of the negative controls: the register
// workload's, then (when any ran) the enforcement workload's.
func (t *TierResult) DetectionRate() string {
	rate := func(caught, runs int) string {
		if runs == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%d/%d", caught, runs)
	}
	out := rate(t.NegativeCaught, t.NegativeRuns)
	if t.EnforceNegativeRuns > 0 {
		out += ", enforcement " + rate(t.EnforceNegativeCaught, t.EnforceNegativeRuns)
	}
	return out
}

// RunTier runs every run of a tier in turn, printing each summary line to
// out, and writes <out>/<time>-tier-<tier>.json.
func RunTier(ctx context.Context, tc TierConfig, out io.Writer) (*TierResult, error) {
	runs, err := tc.Runs()
	if err != nil {
		return nil, err
	}
	tr := &TierResult{Tier: tc.Tier, Started: time.Now(), OK: true}
	for i, rc := range runs {
		if ctx.Err() != nil {
			tr.OK = false
			tr.Failed = append(tr.Failed, "interrupted before "+rc.Name)
			break
		}
		fmt.Fprintf(out, "=== run %d/%d: %s (%s, %v)\n", i+1, len(runs), rc.Name, strings.Join(rc.Nemeses, ","), rc.Time)
		res, err := Run(ctx, rc)
		if err != nil {
			var skip *db.SkipError
			if errors.As(err, &skip) {
				return nil, err
			}
			tr.OK = false
			tr.Failed = append(tr.Failed, fmt.Sprintf("%s: %v", rc.Name, err))
			fmt.Fprintf(out, "ERROR %s: %v\n", rc.Name, err)
			continue
		}
		tr.Runs = append(tr.Runs, res)
		switch {
		case rc.NegativeControl && rc.workload() == WorkloadEnforce:
			tr.EnforceNegativeRuns++
			if res.Verdict == "CAUGHT" {
				tr.EnforceNegativeCaught++
			}
		case rc.NegativeControl:
			tr.NegativeRuns++
			if res.Verdict == "CAUGHT" {
				tr.NegativeCaught++
			}
		}
		if !res.OK() {
			tr.OK = false
			tr.Failed = append(tr.Failed, res.Name+": "+res.Verdict)
		}
		fmt.Fprintln(out, res.SummaryLine())
	}
	tr.WallSeconds = time.Since(tr.Started).Seconds()
	if len(runs) > 1 || tc.Tier != TierSingle {
		path := filepath.Join(tc.Base.OutRoot, tr.Started.Format("20060102-150405")+"-tier-"+tc.Tier+".json")
		b, _ := json.MarshalIndent(tr, "", "  ")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return tr, err
		}
	}
	return tr, nil
}

// Lock takes the machine-wide harness lock: runs share the names of their
// namespaces and containers, so two at once would tear each other down.
// The file lives in /run/lock (a tmpfs, emptied at boot), not in TMPDIR:
// two runs with different TMPDIRs must still exclude each other, and a test
// run leaves nothing in /tmp.
func Lock() (release func(), err error) {
	dir := "/run/lock"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, db.Prefix+"-jepsen.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("jepsen: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("jepsen: another optout-jepsen run holds %s; wait for it or stop it", path)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
}

// RepoRoot finds the module root from dir upwards.
func RepoRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("jepsen: %w", err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/optoutd/optoutd\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("jepsen: no github.com/optoutd/optoutd go.mod above %s (run from the repository, or pass --binary)", dir)
		}
	}
}

// BuildBinary compiles a static optoutd into dir.
func BuildBinary(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "optoutd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/optoutd")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("jepsen: go build ./cmd/optoutd: %w\n%s", err, out)
	}
	return bin, nil
}

// BuildImage runs deploy/build-image.sh with tag.
func BuildImage(ctx context.Context, repo, tag string) error {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repo, "deploy", "build-image.sh"), tag)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("jepsen: deploy/build-image.sh %s: %w\n%s", tag, err, out)
	}
	return nil
}
