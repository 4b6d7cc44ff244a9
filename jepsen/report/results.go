package report

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/optoutd/optoutd/jepsen/checker"
	"github.com/optoutd/optoutd/jepsen/history"
	"github.com/optoutd/optoutd/jepsen/nemesis"
	"github.com/optoutd/optoutd/jepsen/workload"
)

// Results is everything one run found; it is written as results.json.
type Results struct {
	Name            string    `json:"name"`
	Dir             string    `json:"dir"`
	Backend         string    `json:"backend"`
	Nodes           int       `json:"nodes"`
	Concurrency     int       `json:"concurrency"`
	Keys            int       `json:"keys"`
	Seed            uint64    `json:"seed"`
	Nemeses         []string  `json:"nemeses"`
	Overlap         bool      `json:"overlapping_faults"`
	Workload        string    `json:"workload"`
	NegativeControl bool      `json:"negative_control"`
	ServerArgs      []string  `json:"server_args"`
	Started         time.Time `json:"started"`
	WorkloadSeconds float64   `json:"workload_s"`
	WallSeconds     float64   `json:"wall_s"`

	Ops          OpsSummary        `json:"ops"`
	Faults       []Fault           `json:"faults"`
	FaultsByKind map[string]int    `json:"faults_by_kind"`
	Schedule     []nemesis.Planned `json:"schedule"`

	Linearizability checker.LinearResult      `json:"linearizability"`
	Set             checker.SetResult         `json:"set"`
	Watch           checker.WatchResult       `json:"watch"`
	Monotonic       checker.MonotonicResult   `json:"monotonic"`
	Convergence     checker.ConvergenceResult `json:"convergence"`
	// Enforce is the enforcement checker's result (enforce workload only),
	// EnforceQueue what its queues did.
	Enforce           *checker.EnforceResult `json:"enforce,omitempty"`
	EnforceQueue      *workload.QueueStats   `json:"enforce_queue,omitempty"`
	FinalReadFailures []string               `json:"final_read_failures,omitempty"`
	Unavailability    Unavailability         `json:"unavailability"`
	CheckSeconds      float64                `json:"check_s"`

	Anomalies []Anomaly `json:"anomalies"`
	// HarnessErrors are failures of the harness itself (a fault that could
	// not be applied, a node that did not start); they fail the run too.
	HarnessErrors []string `json:"harness_errors,omitempty"`
	// Interrupted: the run was stopped (Ctrl-C/SIGTERM) before its end;
	// only the history so far was checked.
	Interrupted bool `json:"interrupted,omitempty"`
	Valid       bool `json:"valid"`
	// Verdict: PASS or FAIL; for a negative control CAUGHT (the expected
	// violation was found) or MISSED; INTERRUPTED when stopped early with
	// nothing found.
	Verdict string `json:"verdict"`
}

// Fault is a nemesis record with times in seconds.
type Fault struct {
	nemesis.Record
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
}

// Faults converts records.
func Faults(recs []nemesis.Record) ([]Fault, map[string]int) {
	out := make([]Fault, len(recs))
	by := map[string]int{}
	for i, r := range recs {
		out[i] = Fault{Record: r, StartS: secs(r.Start), EndS: secs(r.End)}
		by[r.Kind]++
	}
	return out, by
}

func secs(ns int64) float64 { return float64(ns) / 1e9 }

// Anomaly is one thing a checker found wrong.
type Anomaly struct {
	Type   string `json:"type"`
	Key    string `json:"key,omitempty"`
	Detail string `json:"detail"`
}

// OpsSummary counts operations.
type OpsSummary struct {
	Total   int `json:"total"`
	Checked int `json:"checked_linearizability"`
	// ByType maps op type to outcome to count; final reads count as
	// "final-get".
	ByType map[string]map[string]int `json:"by_type"`
}

// Summarize counts ops by type and outcome.
func Summarize(ops []history.Op) OpsSummary {
	s := OpsSummary{Total: len(ops), ByType: map[string]map[string]int{}}
	for _, op := range ops {
		t := string(op.Type)
		if op.Final {
			t = "final-" + t
		}
		if s.ByType[t] == nil {
			s.ByType[t] = map[string]int{}
		}
		s.ByType[t][string(op.Outcome)]++
	}
	return s
}

// CollectAnomalies lists what the checkers found.
func (r *Results) CollectAnomalies() {
	r.Anomalies = []Anomaly{} // [] rather than null in results.json
	for _, k := range r.Linearizability.Failed {
		typ := "linearizability"
		if k.Verdict == checker.TimedOut {
			typ = "linearizability-timeout"
		}
		r.Anomalies = append(r.Anomalies, Anomaly{Type: typ, Key: k.Key,
			Detail: fmt.Sprintf("%s after %d pass(es) over %d ops; see lin-%s.html", k.Verdict, k.Passes, k.Ops, k.Key)})
	}
	add := func(typ string, details []string) {
		for _, d := range details {
			r.Anomalies = append(r.Anomalies, Anomaly{Type: typ, Detail: d})
		}
	}
	add("set-lost", r.Set.Lost)
	add("set-phantom", r.Set.Phantom)
	add("set-divergent", r.Set.Divergent)
	add("set-unreadable", r.Set.Unreadable)
	add("watch-missed", r.Watch.Missed)
	add("watch-phantom", r.Watch.Phantom)
	add("watch-duplicate", r.Watch.Duplicate)
	add("watch-out-of-order", r.Watch.OutOfOrder)
	add("watch-divergent", r.Watch.Divergent)
	add("watch-stalled", r.Watch.Stalled)
	add("version-went-back", r.Monotonic.Violations)
	if extra := r.Monotonic.Count - len(r.Monotonic.Violations); extra > 0 {
		add("version-went-back", []string{fmt.Sprintf("... and %d more (see results.json monotonic.count)", extra)})
	}
	add("final-read-failed", r.FinalReadFailures)
	if e := r.Enforce; e != nil {
		listed := map[string]int{}
		for _, f := range e.Findings {
			listed[f.Type]++
			r.Anomalies = append(r.Anomalies, Anomaly{Type: f.Type, Key: f.Key, Detail: f.Detail})
		}
		for _, typ := range sortedKeys(e.Counts) {
			if extra := e.Counts[typ] - listed[typ]; extra > 0 {
				add(typ, []string{fmt.Sprintf("... and %d more (see results.json enforce.anomaly_counts)", extra)})
			}
		}
	}
	for _, f := range r.Faults {
		for _, d := range f.Findings {
			r.Anomalies = append(r.Anomalies, Anomaly{Type: "nemesis-finding", Detail: fmt.Sprintf("%s #%d: %s", f.Kind, f.ID, d)})
		}
	}
	if !r.Convergence.Valid && !r.Interrupted {
		add("not-converged", []string{r.Convergence.Reason})
	}
}

// Decide sets Valid and Verdict.
func (r *Results) Decide() {
	r.Valid = len(r.Anomalies) == 0 && len(r.HarnessErrors) == 0
	switch {
	case r.NegativeControl && r.Enforce != nil:
		if r.Enforce.Caught() {
			r.Verdict = "CAUGHT"
		} else if r.Interrupted {
			r.Verdict, r.Valid = "INTERRUPTED", false
		} else {
			r.Verdict = "MISSED"
		}
	case r.NegativeControl && !r.Linearizability.Valid:
		r.Verdict = "CAUGHT"
	case r.Interrupted && len(r.Anomalies) == 0:
		r.Verdict, r.Valid = "INTERRUPTED", false
	case r.NegativeControl:
		r.Verdict = "MISSED"
	case r.Valid:
		r.Verdict = "PASS"
	default:
		r.Verdict = "FAIL"
	}
}

// OK reports whether the run met its expectation.
func (r *Results) OK() bool {
	if r.NegativeControl {
		return r.Verdict == "CAUGHT" && len(r.HarnessErrors) == 0
	}
	return r.Verdict == "PASS"
}

// SummaryLine is the one line printed at the end of a run.
func (r *Results) SummaryLine() string {
	kinds := make([]string, 0, len(r.FaultsByKind))
	for k, n := range r.FaultsByKind {
		kinds = append(kinds, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(kinds)
	worstW, worstR := 0.0, 0.0
	for _, k := range r.Unavailability.ByKind {
		worstW, worstR = max(worstW, k.MaxWriteGapS), max(worstR, k.MaxReadGapS)
	}
	return fmt.Sprintf("%s %s: %d ops (%d checked), faults [%s], %d anomalies, check %.2fs, worst unavailability write %.1fs read %.1fs%s → %s",
		r.Verdict, r.Name, r.Ops.Total, r.Ops.Checked, strings.Join(kinds, " "), len(r.Anomalies),
		r.CheckSeconds, worstW, worstR, r.enforceSummary(), r.Dir)
}

// enforceSummary is the enforcement part of the summary line.
func (r *Results) enforceSummary() string {
	e := r.Enforce
	if e == nil {
		return ""
	}
	discarded := 0
	for _, n := range e.Discarded {
		discarded += n
	}
	return fmt.Sprintf("; enforce: %d events, %d processed, %d discarded (%d for a later opt-out), %d forged receipts refused of %d fenced, planted violations flagged %d/%d, violations stored %d/%d, processed after an acknowledged opt-out %d",
		e.Events, e.Processed, discarded, e.Discarded["denied_now"], e.ForgedRefused, e.ForgedFenced, e.PlantedFlagged, e.Planted,
		e.Stored, e.Violations, e.Counts[checker.EnfAfterOptOut])
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// WriteJSON writes results.json.
func (r *Results) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
