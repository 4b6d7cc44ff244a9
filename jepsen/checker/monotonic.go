package checker

import (
	"fmt"
	"sort"

	"github.com/optoutd/optoutd/jepsen/history"
)

// MonotonicResult lists every time a client saw a key's version go back.
type MonotonicResult struct {
	Valid bool `json:"valid"`
	// Count is every violation; Violations lists the first MaxListed.
	Count      int      `json:"count"`
	Violations []string `json:"violations,omitempty"`
}

// observedVersion is the version an op tells its client about, if any.
func observedVersion(op history.Op) (uint64, bool) {
	switch {
	case op.Type.IsRead() && (op.Outcome == history.OK || op.Outcome == history.NotFound):
		return op.Version, true
	case (op.Type == history.Write || op.Type == history.CAS) && (op.Outcome == history.OK || op.Outcome == history.Mismatch):
		return op.Version, true
	}
	return 0, false
}

// MaxListed bounds how many violations are spelled out.
const MaxListed = 20

// CheckMonotonic checks, for every worker (a client that issues one request
// at a time) and key, that the versions it observes never decrease. Final
// reads are made by the harness on every node, not by a worker, and are
// left out.
func CheckMonotonic(ops []history.Op) MonotonicResult {
	sorted := append([]history.Op(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	type wk struct {
		worker int
		key    string
	}
	type seen struct {
		version uint64
		op      int
	}
	last := map[wk]seen{}
	res := MonotonicResult{Valid: true}
	for _, op := range sorted {
		if op.Final {
			continue
		}
		v, ok := observedVersion(op)
		if !ok {
			continue
		}
		k := wk{op.Worker, op.Key}
		if prev, had := last[k]; had && v < prev.version {
			res.Valid = false
			res.Count++
			if len(res.Violations) >= MaxListed {
				continue
			}
			res.Violations = append(res.Violations, fmt.Sprintf(
				"worker %d key %s: op #%d (%s on %s) saw version %d after op #%d saw %d",
				op.Worker, op.Key, op.Index, op.Type, op.Node, v, prev.op, prev.version))
			continue
		}
		last[k] = seen{v, op.Index}
	}
	return res
}
