package main

import "slices"

// Workload names.
const (
	wlCheck    = "check"
	wlBatch    = "batch"
	wlSet      = "set"
	wlCAS      = "cas"
	wlMixed    = "mixed"
	wlFailover = "failover"
	// The enforcement workloads (issue 10), see enforce.go.
	wlGate        = "gate"
	wlGateReceipt = "gate-receipt"
	wlCache       = "cache"
	wlFence       = "fence"
	wlReport      = "report"
	wlReportBatch = "report-batch"
	// wlImport writes --batch-size distinct keys per call (issue 12's
	// bulk import): optoutd SetBatch, etcd a Txn of Puts.
	wlImport = "import"
)

// allWorkloads are every workload's name. The position of a name gives
// its workload its random streams (streamOf), so new names go at the end.
var allWorkloads = []string{wlCheck, wlBatch, wlSet, wlCAS, wlMixed, wlFailover,
	wlGate, wlGateReceipt, wlCache, wlFence, wlReport, wlReportBatch, wlImport}

// defaultWorkloads are the full sweep of issue 11, what runs without
// --workloads (--quick runs allWorkloads).
var defaultWorkloads = []string{wlCheck, wlBatch, wlSet, wlCAS, wlMixed, wlFailover}

// enforcementWorkloads are the workloads of the enforcement API.
var enforcementWorkloads = []string{wlGate, wlGateReceipt, wlCache, wlFence, wlReport, wlReportBatch}

// throughputWorkloads are the workloads measured in sweep cells, in the
// order they run inside one round: reads before the writes that grow the
// data (the failover samples come last).
var throughputWorkloads = []string{wlCheck, wlBatch, wlGate, wlGateReceipt, wlCache, wlFence,
	wlSet, wlCAS, wlMixed, wlReport, wlReportBatch, wlImport}

// workloadAliases are the names of earlier releases of the tool, so old
// commands (in docs/benchmarks.md's lab notebook) still run.
var workloadAliases = map[string]string{"reads": wlCheck, "writes": wlSet}

// workloadGroups name several workloads at once in --workloads.
var workloadGroups = map[string][]string{"enforcement": enforcementWorkloads, "all": allWorkloads}

// resolveAliases maps old workload names to today's and expands groups.
func resolveAliases(names []string) []string {
	var out []string
	for _, n := range names {
		if g, ok := workloadGroups[n]; ok {
			out = append(out, g...)
			continue
		}
		if a, ok := workloadAliases[n]; ok {
			n = a
		}
		out = append(out, n)
	}
	return out
}

// isWrite: workloads whose storage commits are counted.
func isWrite(wl string) bool {
	return slices.Contains([]string{wlSet, wlCAS, wlMixed, wlReport, wlReportBatch, wlImport}, wl)
}

// isEnforcement: the workload drives EnforceOps.
func isEnforcement(wl string) bool { return slices.Contains(enforcementWorkloads, wl) }

// perKey: workloads whose calls carry --batch-size items, whose
// throughput is counted in items (keys or reports) per second.
func perKey(wl string) bool { return wl == wlBatch || wl == wlReportBatch || wl == wlImport }

// unitOf is the throughput unit of workload wl.
func unitOf(wl string) string {
	switch wl {
	case wlBatch:
		return "keys/s"
	case wlReport, wlReportBatch:
		return "reports/s"
	case wlImport:
		return "records/s"
	}
	return "calls/s"
}

// benchName is wl as a Go benchmark name: "gate-receipt" is GateReceipt
// (a '-' would read as a GOMAXPROCS suffix).
func benchName(wl string) string {
	out := []byte{}
	up := true
	for i := 0; i < len(wl); i++ {
		c := wl[i]
		switch {
		case c == '-':
			up = true
			continue
		case up && c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		up = false
		out = append(out, c)
	}
	return string(out)
}
