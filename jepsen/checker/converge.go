package checker

import "fmt"

// Digest is one node's StateDigest answer.
type Digest struct {
	Node         string `json:"node"`
	AppliedIndex uint64 `json:"applied_index"`
	SHA256       string `json:"sha256"`
	Records      uint64 `json:"records"`
	Err          string `json:"error,omitempty"`
}

// ConvergenceResult says whether every node ended in the same state.
type ConvergenceResult struct {
	Valid   bool     `json:"valid"`
	Digests []Digest `json:"digests"`
	Reason  string   `json:"reason,omitempty"`
	// WaitedSeconds is how long the harness polled before deciding.
	WaitedSeconds float64 `json:"waited_s"`
}

// CheckConvergence decides one poll: all nodes answered, with one applied
// index and one digest.
func CheckConvergence(ds []Digest) ConvergenceResult {
	res := ConvergenceResult{Valid: true, Digests: ds}
	if len(ds) == 0 {
		return ConvergenceResult{Reason: "no digests"}
	}
	for _, d := range ds {
		switch {
		case d.Err != "":
			res.Valid, res.Reason = false, fmt.Sprintf("%s: %s", d.Node, d.Err)
		case d.AppliedIndex != ds[0].AppliedIndex:
			res.Valid, res.Reason = false, fmt.Sprintf("applied index %s=%d, %s=%d", ds[0].Node, ds[0].AppliedIndex, d.Node, d.AppliedIndex)
		case d.SHA256 != ds[0].SHA256:
			res.Valid, res.Reason = false, fmt.Sprintf("same applied index %d but digest %s=%s, %s=%s", d.AppliedIndex, ds[0].Node, ds[0].SHA256, d.Node, d.SHA256)
		}
		if !res.Valid {
			return res
		}
	}
	return res
}
