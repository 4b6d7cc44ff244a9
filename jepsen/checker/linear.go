package checker

import (
	"context"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/optoutd/optoutd/jepsen/history"
)

// Infinity is the return time of a write whose outcome is unknown: it may
// take effect at any time after its call, including never (which is the
// same as "after everything else").
const Infinity = int64(math.MaxInt64)

// Options selects the verdict-preserving optimisations (DESIGN.md).
type Options struct {
	// DropUnobserved leaves out, in a first pass, every unknown write whose
	// tag no read saw. A key that fails that pass is checked again with
	// every write.
	DropUnobserved bool
	// CloseObserved closes an unknown write at the earliest return of a
	// read that saw its tag, instead of leaving it open forever.
	CloseObserved bool
	// Timeout bounds each porcupine call. A timeout is a failure.
	Timeout time.Duration
	// Parallel is how many keys are checked at once (default GOMAXPROCS).
	Parallel int
}

// DefaultOptions turns both optimisations on.
func DefaultOptions() Options {
	return Options{DropUnobserved: true, CloseObserved: true, Timeout: 60 * time.Second}
}

// Verdict of one key.
type Verdict string

const (
	Linearizable    Verdict = "ok"
	NotLinearizable Verdict = "illegal"
	TimedOut        Verdict = "timeout"
)

// KeyResult is the verdict for one key.
type KeyResult struct {
	Key     string  `json:"key"`
	Verdict Verdict `json:"verdict"`
	// Ops is how many operations the deciding pass checked.
	Ops int `json:"ops"`
	// Passes is 2 when the first (optimised) pass failed and the key was
	// re-checked with every write.
	Passes  int           `json:"passes"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// history of the deciding pass, for visualisation.
	history []porcupine.Operation
}

// History returns the porcupine operations of the deciding pass.
func (k KeyResult) History() []porcupine.Operation { return k.history }

// LinearResult is the verdict of every key.
type LinearResult struct {
	Valid      bool          `json:"valid"`
	Keys       int           `json:"keys"`
	OpsChecked int           `json:"ops_checked"`
	Failed     []KeyResult   `json:"failed,omitempty"`
	SecondPass int           `json:"second_pass_keys"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	PerKey     []KeyResult   `json:"-"`
}

// registerOps returns the register ops (not the set workload's adds).
func registerOps(ops []history.Op) map[string][]history.Op {
	out := map[string][]history.Op{}
	for _, op := range ops {
		switch op.Type {
		case history.Get, history.Check, history.Write, history.CAS:
			out[op.Key] = append(out[op.Key], op)
		}
	}
	return out
}

// observation is what reads revealed about a tag.
type observation struct {
	version uint64
	firstAt int64 // earliest return of a Get that saw the tag
}

func observe(ops []history.Op) map[string]observation {
	obs := map[string]observation{}
	for _, op := range ops {
		if op.Type != history.Get || op.Outcome != history.OK || op.Tag == "" {
			continue
		}
		o, seen := obs[op.Tag]
		if !seen || op.Return < o.firstAt {
			if !seen {
				o.version = op.Version
			}
			o.firstAt = op.Return
		}
		obs[op.Tag] = o
	}
	return obs
}

// Prepare turns one key's ops into porcupine operations. Failed reads and
// not-applied writes are left out: the former tell nothing, the latter
// certainly did not happen, so a read that saw one fails the check.
func Prepare(ops []history.Op, opts Options, dropUnobserved bool) []porcupine.Operation {
	obs := observe(ops)
	var out []porcupine.Operation
	for _, op := range ops {
		in := RegInput{Type: op.Type, Tag: op.Tag, State: op.State, Outcome: op.Outcome, Version: op.Version, Op: op.Index}
		if op.Expected != nil {
			in.HasExpected, in.Expected = true, *op.Expected
		}
		ret := op.Return
		switch op.Outcome {
		case history.Fail, history.NotApplied:
			continue
		case history.Unknown:
			if !op.Type.IsWrite() {
				continue
			}
			o, seen := obs[op.Tag]
			if !seen && dropUnobserved {
				continue
			}
			ret = Infinity
			in.Version = 0
			if seen {
				in.Version = o.version
				if opts.CloseObserved && o.firstAt >= op.Call {
					ret = o.firstAt
				}
			}
		}
		out = append(out, porcupine.Operation{ClientId: op.Process, Input: in, Output: nil, Call: op.Call, Return: ret, Metadata: op.Index})
	}
	return out
}

// hasUnobserved reports whether dropping unobserved writes removed anything.
func hasUnobserved(ops []history.Op) bool {
	obs := observe(ops)
	for _, op := range ops {
		if op.Outcome == history.Unknown && op.Type.IsWrite() {
			if _, seen := obs[op.Tag]; !seen {
				return true
			}
		}
	}
	return false
}

// CheckKey decides one key.
func CheckKey(key string, ops []history.Op, opts Options) KeyResult {
	start := time.Now()
	model := RegisterModel()
	run := func(drop bool) (porcupine.CheckResult, []porcupine.Operation) {
		h := Prepare(ops, opts, drop)
		return porcupine.CheckOperationsTimeout(model, h, opts.Timeout), h
	}
	res := KeyResult{Key: key, Passes: 1}
	r, h := run(opts.DropUnobserved)
	if r != porcupine.Ok && opts.DropUnobserved && hasUnobserved(ops) {
		res.Passes = 2
		r, h = run(false)
	}
	res.Ops, res.history, res.Elapsed = len(h), h, time.Since(start)
	res.Verdict = verdictOf(r)
	return res
}

// verdictOf maps porcupine's answer; Unknown (it ran out of time) is a
// failure of its own, never a pass.
func verdictOf(r porcupine.CheckResult) Verdict {
	switch r {
	case porcupine.Ok:
		return Linearizable
	case porcupine.Illegal:
		return NotLinearizable
	default:
		return TimedOut
	}
}

// CheckLinearizable decides every register key of a history.
func CheckLinearizable(ctx context.Context, ops []history.Op, opts Options) LinearResult {
	start := time.Now()
	byKey := registerOps(ops)
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	par := opts.Parallel
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}
	results := make([]KeyResult, len(keys))
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = KeyResult{Key: k, Verdict: TimedOut}
				return
			}
			defer func() { <-sem }()
			results[i] = CheckKey(k, byKey[k], opts)
		}()
	}
	wg.Wait()
	out := summarize(results)
	out.Elapsed = time.Since(start)
	return out
}

// summarize combines per-key verdicts: valid only if every key is
// linearizable (a timed-out key is a failure).
func summarize(results []KeyResult) LinearResult {
	out := LinearResult{Valid: true, Keys: len(results), PerKey: results}
	for _, r := range results {
		out.OpsChecked += r.Ops
		if r.Passes == 2 {
			out.SecondPass++
		}
		if r.Verdict != Linearizable {
			out.Valid = false
			out.Failed = append(out.Failed, r)
		}
	}
	return out
}

// Visualize re-runs a failed key verbosely and returns porcupine's info for
// porcupine.Visualize.
func Visualize(r KeyResult, timeout time.Duration) (porcupine.Model, porcupine.LinearizationInfo) {
	model := RegisterModel()
	_, info := porcupine.CheckOperationsVerbose(model, r.history, timeout)
	return model, info
}
