package jepsen

import (
	"context"
	"time"

	"github.com/optoutd/optoutd/jepsen/history"
	"github.com/optoutd/optoutd/jepsen/report"
	"github.com/optoutd/optoutd/jepsen/workload"
)

// Workloads.
const (
	// WorkloadRegister is registers, the set and watch streams, checked
	// for linearizability, loss and delivery.
	WorkloadRegister = "register"
	// WorkloadEnforce is the enforcement workload (receipts, fencing,
	// overrides, violation reports) checked by checker.CheckEnforce.
	WorkloadEnforce = "enforce"
)

// Workloads lists the names --workload takes.
func Workloads() []string { return []string{WorkloadRegister, WorkloadEnforce} }

func (c *RunConfig) workload() string {
	if c.Workload == "" {
		return WorkloadRegister
	}
	return c.Workload
}

// unsafeReads: only the register workload's negative control runs nodes
// that serve stale reads; the enforcement workload's breaks its services
// instead.
func (c *RunConfig) unsafeReads() bool {
	return c.NegativeControl && c.workload() == WorkloadRegister
}

// purposes are the purposes a run defines before its workload starts.
func (c *RunConfig) purposes() []string {
	if c.workload() == WorkloadEnforce {
		return []string{workload.Purpose, workload.EnforcePurpose}
	}
	return []string{workload.Purpose}
}

// enforceAfterwards waits for convergence and sends every report still
// pending (the cluster is healed: each must get its verdicts within the
// final-read limit).
func enforceAfterwards(ctx context.Context, cl *cluster, enf *workload.Enforce, res *report.Results) {
	res.Convergence = cl.converge(ctx, convergeLimit)
	fctx, cancel := context.WithTimeout(ctx, finalLimit)
	defer cancel()
	enf.Flush(fctx)
	lctx, lcancel := context.WithTimeout(ctx, finalLimit)
	defer lcancel()
	for _, f := range enf.ListViolations(lctx) {
		res.FinalReadFailures = append(res.FinalReadFailures, "list violations of "+f)
	}
	qs := enf.QueueStats()
	res.EnforceQueue = &qs
}

// newLoad builds the run's workload; load runs it until its context ends.
func newLoad(cfg RunConfig, cl *cluster, rec *history.Recorder) (load func(context.Context) error, d driven, err error) {
	if cfg.workload() == WorkloadEnforce {
		ec := workload.DefaultEnforceConfig(cl.endpoints(), cfg.Seed)
		ec.SkipFence, ec.Log = cfg.NegativeControl, cfg.Log
		if d.enf, err = workload.NewEnforce(ec, rec); err != nil {
			return nil, d, err
		}
		// No watch streams: they follow the register purpose.
		d.watchers = workload.StartWatchers(nil, cfg.Log)
		return d.enf.Run, d, nil
	}
	mix := workload.DefaultMix()
	if cfg.NegativeControl {
		mix = workload.ReadHeavyMix()
	}
	d.wl, err = workload.New(workload.Config{Endpoints: cl.endpoints(), Concurrency: cfg.Concurrency, Keys: cfg.Keys,
		Seed: cfg.Seed, Mix: mix, Timeout: 5 * time.Second, Think: 5 * time.Millisecond, Log: cfg.Log}, rec)
	if err != nil {
		return nil, d, err
	}
	// The watchers start before the first write, so they see every change,
	// and outlive the workload until they have caught up after healing.
	d.watchers = workload.StartWatchers(cl.endpoints(), cfg.Log)
	return d.wl.Run, d, nil
}

// EnforceNemeses is the fault mix of the tiers' enforcement run: a new
// leader (fences and reports of the old one end unknown or fail over), a
// crash and restart, a paused leader.
var EnforceNemeses = []string{"partition-leader", "kill", "pause"}

// enforceNegativeNemeses: the negative control needs flips and queue
// delays, not faults; one fault kind keeps it a chaos run.
var enforceNegativeNemeses = []string{"partition-follower"}

// enforceRuns are the ci and long tiers' enforcement pair: one run under
// EnforceNemeses (overlapping, for --time, in the long tier) and its
// negative control.
func (tc TierConfig) enforceRuns(t time.Duration) []RunConfig {
	r := tc.Base
	r.Name, r.Workload, r.Nemeses, r.Overlap, r.Time, r.Seed = WorkloadEnforce, WorkloadEnforce, EnforceNemeses, false, EnforceTime, tc.Base.Seed+2000
	if tc.Tier == TierLong {
		r.Name, r.Overlap, r.Time = "enforce-overlap", true, t
	}
	n := tc.Base
	n.Name, n.Workload, n.Nemeses, n.Overlap, n.Time = "enforce-negative-control", WorkloadEnforce, enforceNegativeNemeses, false, NegativeTime
	n.NegativeControl, n.Seed = true, tc.Base.Seed+3000
	return []RunConfig{r, n}
}
