package checker

import (
	"fmt"
	"sort"

	"github.com/optoutd/optoutd/jepsen/history"
)

// SetFinal is what one node holds at the end: for every key asked about,
// whether it is opted out there.
type SetFinal struct {
	Node    string
	Present map[string]bool
	// Err is set when the node could not be read; every key then counts as
	// unreadable, which is an anomaly once the cluster is healed.
	Err string
}

// SetResult is the verdict of the set workload.
type SetResult struct {
	Valid      bool `json:"valid"`
	Attempted  int  `json:"attempted"`
	Acked      int  `json:"acknowledged"`
	Unknown    int  `json:"unknown"`
	NotApplied int  `json:"not_applied"`
	// UnknownPresent counts unknown adds found on every node (they did
	// apply); the rest never did.
	UnknownPresent int `json:"unknown_present"`
	// Lost: acknowledged adds missing on some node.
	Lost []string `json:"lost,omitempty"`
	// Phantom: keys present on some node although their add was certainly
	// not applied, or never attempted.
	Phantom []string `json:"phantom,omitempty"`
	// Divergent: unknown adds present on some nodes but not on others.
	Divergent []string `json:"divergent,omitempty"`
	// Unreadable: nodes whose final read failed.
	Unreadable []string `json:"unreadable,omitempty"`
}

// CheckSet compares the adds of a history with what every node holds.
// probes are keys never attempted; they must be absent everywhere.
func CheckSet(ops []history.Op, finals []SetFinal, probes []string) SetResult {
	res := SetResult{Valid: true}
	outcome := map[string]history.Outcome{}
	for _, op := range ops {
		if op.Type != history.Add {
			continue
		}
		res.Attempted++
		outcome[op.Key] = op.Outcome
		switch op.Outcome {
		case history.OK:
			res.Acked++
		case history.NotApplied:
			res.NotApplied++
		default:
			res.Unknown++
		}
	}
	for _, f := range finals {
		if f.Err != "" {
			res.Unreadable = append(res.Unreadable, f.Node+": "+f.Err)
		}
	}
	keys := make([]string, 0, len(outcome))
	for k := range outcome {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		present, absent := nodesWith(finals, k)
		switch outcome[k] {
		case history.OK:
			if len(absent) > 0 {
				res.Lost = append(res.Lost, fmt.Sprintf("%s missing on %v", k, absent))
			}
		case history.NotApplied:
			if len(present) > 0 {
				res.Phantom = append(res.Phantom, fmt.Sprintf("%s (answered not applied) present on %v", k, present))
			}
		default:
			switch {
			case len(absent) == 0 && len(present) > 0:
				res.UnknownPresent++
			case len(present) > 0:
				res.Divergent = append(res.Divergent, fmt.Sprintf("%s present on %v, absent on %v", k, present, absent))
			}
		}
	}
	for _, k := range probes {
		if present, _ := nodesWith(finals, k); len(present) > 0 {
			res.Phantom = append(res.Phantom, fmt.Sprintf("%s (never attempted) present on %v", k, present))
		}
	}
	res.Valid = len(res.Lost) == 0 && len(res.Phantom) == 0 && len(res.Divergent) == 0 && len(res.Unreadable) == 0
	return res
}

func nodesWith(finals []SetFinal, key string) (present, absent []string) {
	for _, f := range finals {
		if f.Err != "" {
			continue
		}
		if f.Present[key] {
			present = append(present, f.Node)
		} else {
			absent = append(absent, f.Node)
		}
	}
	return present, absent
}
