package jepsen

import (
	"context"

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
