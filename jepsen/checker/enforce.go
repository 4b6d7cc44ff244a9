package checker

import (
	"fmt"
	"sort"
	"time"

	"github.com/optoutd/optoutd/jepsen/history"
)

// Anomaly types of the enforcement checker.
const (
	// EnfAfterOptOut: a clean service processed an event although the
	// subject's opt-out had been acknowledged before the fence started and
	// no re-opt-in or ALLOW override could have been in force.
	EnfAfterOptOut = "enforce-processed-after-opt-out"
	// EnfCleanFlagged: the cluster judged a clean service's report (fenced
	// PROCESS, reported at the fence's read index with its genuine
	// receipt) a violation.
	EnfCleanFlagged = "enforce-clean-flagged"
	// EnfPlantedMissed: the cluster judged a planted violation clean.
	EnfPlantedMissed = "enforce-planted-missed"
	// EnfForgedAccepted: a fence answered anything but DISCARD /
	// INVALID_RECEIPT for a forged receipt, or a service processed one.
	EnfForgedAccepted = "enforce-forged-accepted"
	// EnfFalseAccepted: a Gate allowed a false event, or a service
	// processed one.
	EnfFalseAccepted = "enforce-false-accepted"
	// EnfUnreported: a processing whose report never got a verdict after
	// healing.
	EnfUnreported = "enforce-unreported"
	// EnfViolationLost: a verdict named a violation that the final
	// ListViolations of its service does not hold.
	EnfViolationLost = "enforce-violation-not-stored"
	// EnfVacuous: the run exercised too little to prove anything.
	EnfVacuous = "enforce-vacuous"
)

// EnforceOptions says how to read an enforcement history.
type EnforceOptions struct {
	// Fencing: the clean services fence. False for the negative control,
	// whose services process on the receipt alone; their reports are then
	// not "clean" and only counted.
	Fencing bool
	// Sloppy is the service that plants violations.
	Sloppy string
	// Skew is how far a node's clock may lag the harness's: an ALLOW
	// override counts as possibly in force for a fence that started before
	// its expiry plus Skew.
	Skew time.Duration
	// Interrupted: the run was cut short; unreported processings and a
	// thin history are not anomalies.
	Interrupted bool
}

// DefaultEnforceOptions: fencing services, a second of clock skew.
func DefaultEnforceOptions(sloppy string) EnforceOptions {
	return EnforceOptions{Fencing: true, Sloppy: sloppy, Skew: time.Second}
}

// EnforceFinding is one anomaly the checker found.
type EnforceFinding struct {
	Type   string `json:"type"`
	Key    string `json:"key,omitempty"`
	Detail string `json:"detail"`
}

// EnforceResult is the enforcement checker's verdict and counts.
type EnforceResult struct {
	Valid bool `json:"valid"`
	// OpsChecked counts the enforcement ops read (every one but the
	// register workload's).
	OpsChecked int `json:"ops_checked"`
	Events     int `json:"events"`
	// EventsByRole counts events (genuine, false-*, forged-*, planted-*).
	EventsByRole map[string]int `json:"events_by_role"`
	Gates        int            `json:"gates"`
	GatesAllowed int            `json:"gates_allowed"`
	GatesFailed  int            `json:"gates_failed_closed"`
	Fences       int            `json:"fences"`
	FencesFailed int            `json:"fences_failed_closed"`
	// Processed counts the clean services' processings; Discarded their
	// fences' discards by reason.
	Processed int            `json:"processed"`
	Discarded map[string]int `json:"discarded"`
	// AfterReOptIn: processed with a receipt from before an acknowledged
	// opt-out that a re-opt-in replaced; UnderOverride: processed while an
	// acknowledged opt-out stood, excused only by an ALLOW override.
	AfterReOptIn  int `json:"processed_after_re_opt_in"`
	UnderOverride int `json:"processed_under_override"`
	OptOuts       int `json:"opt_outs_acknowledged"`
	OptIns        int `json:"opt_ins_acknowledged"`
	FlipsUnknown  int `json:"flips_unknown"`
	Overrides     int `json:"overrides_created"`
	OverridesUnk  int `json:"overrides_unknown"`
	// ForgedFenced: fences of forged receipts that answered; Refused:
	// those that said DISCARD / INVALID_RECEIPT.
	ForgedFenced  int `json:"forged_fenced"`
	ForgedRefused int `json:"forged_refused"`
	FalseGated    int `json:"false_gated"`
	FalseRefused  int `json:"false_refused_at_gate"`
	// Planted: the sloppy service's processings; Flagged: judged a
	// violation in every verdict they got.
	Planted        int `json:"planted"`
	PlantedFlagged int `json:"planted_flagged"`
	// Reports: reports with a verdict; CleanReports those of clean
	// processings; UnfencedFlagged (negative control) the verdicts that
	// flagged an unfenced clean processing.
	Reports         int `json:"reports_judged"`
	CleanReports    int `json:"clean_reports"`
	UnfencedFlagged int `json:"unfenced_flagged"`
	Unreported      int `json:"unreported"`
	// Violations: verdicts that named a stored violation; Stored: those
	// the final ListViolations found.
	Violations int `json:"violations_reported"`
	Stored     int `json:"violations_stored"`
	// Counts is anomalies by type; Findings lists the first MaxListed of
	// each.
	Counts   map[string]int   `json:"anomaly_counts"`
	Findings []EnforceFinding `json:"findings,omitempty"`
}

// Caught reports whether the checker itself proved an event processed
// after an acknowledged opt-out (the negative control's expectation).
func (r EnforceResult) Caught() bool { return r.Counts[EnfAfterOptOut] > 0 }

func (r *EnforceResult) find(typ, key, format string, args ...any) {
	r.Counts[typ]++
	if r.Counts[typ] <= MaxListed {
		r.Findings = append(r.Findings, EnforceFinding{Type: typ, Key: key, Detail: fmt.Sprintf(format, args...)})
	}
}

// subjectOps are the writes that decide a subject's processing.
type subjectOps struct {
	outs, ins, overrides []history.Op
}

// CheckEnforce checks an enforcement history; see DESIGN.md.
func CheckEnforce(ops []history.Op, opt EnforceOptions) EnforceResult {
	res := EnforceResult{EventsByRole: map[string]int{}, Discarded: map[string]int{}, Counts: map[string]int{}}
	sorted := append([]history.Op(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	subjects := map[string]*subjectOps{}
	of := func(k string) *subjectOps {
		if subjects[k] == nil {
			subjects[k] = &subjectOps{}
		}
		return subjects[k]
	}
	verdicts := map[int][]history.ReportEntry{} // processing op index -> verdicts
	var flagged []history.Op                    // OK reports, for the stored check
	stored := map[string]map[uint64]bool{}      // service -> violation ids listed at the end
	events := map[int]string{}
	var processings []history.Op
	for _, op := range sorted {
		if op.Enf != nil {
			res.OpsChecked++
		}
		if op.Enf != nil && op.Enf.Event != 0 && events[op.Enf.Event] == "" && op.Enf.Role != "" {
			events[op.Enf.Event] = op.Enf.Role
		}
		switch op.Type {
		case history.OptOut, history.OptIn:
			s := of(op.Key)
			switch {
			case op.Outcome == history.OK && op.Type == history.OptOut:
				res.OptOuts++
				s.outs = append(s.outs, op)
			case op.Outcome == history.OK:
				res.OptIns++
				s.ins = append(s.ins, op)
			case op.Outcome == history.Unknown:
				res.FlipsUnknown++
				if op.Type == history.OptIn {
					s.ins = append(s.ins, op)
				}
			}
		case history.Override:
			if op.Outcome == history.OK || op.Outcome == history.Unknown {
				of(op.Key).overrides = append(of(op.Key).overrides, op)
				if op.Outcome == history.OK {
					res.Overrides++
				} else {
					res.OverridesUnk++
				}
			}
		case history.Gate:
			res.checkGate(op)
		case history.Fence:
			if res.checkFence(op, opt) {
				processings = append(processings, op)
			}
		case history.Process:
			if res.checkProcess(op, opt) {
				processings = append(processings, op)
			}
		case history.Report:
			if op.Outcome == history.OK && op.Enf != nil {
				for _, e := range op.Enf.Reports {
					verdicts[e.Op] = append(verdicts[e.Op], e)
					res.Reports++
				}
				flagged = append(flagged, op)
			}
		case history.ListViolations:
			if op.Outcome == history.OK && op.Enf != nil {
				ids := map[uint64]bool{}
				for _, id := range op.Enf.Stored {
					ids[id] = true
				}
				stored[op.Key] = ids
			}
		}
	}
	res.Events = len(events)
	for _, role := range events {
		res.EventsByRole[role]++
	}
	for _, p := range processings {
		if p.Enf.Service != opt.Sloppy && !history.IsFalse(p.Enf.Role) {
			res.checkAfterOptOut(p, subjects[p.Key], opt)
		}
		res.checkVerdicts(p, verdicts[p.Index], opt)
	}
	res.checkStored(flagged, stored)
	res.checkVacuous(opt)
	res.Valid = len(res.Counts) == 0
	return res
}

// checkGate: a false event must never be allowed.
func (r *EnforceResult) checkGate(op history.Op) {
	r.Gates++
	if op.Outcome != history.OK {
		r.GatesFailed++
	} else if op.Enf.Allow {
		r.GatesAllowed++
	}
	if history.IsFalse(op.Enf.Role) {
		r.FalseGated++
		if op.Outcome == history.OK && op.Enf.Allow {
			r.find(EnfFalseAccepted, op.Key, "op #%d: Gate allowed false event %d (%s, purpose %q)", op.Index, op.Enf.Event, op.Enf.Role, op.Enf.Purpose)
		} else {
			r.FalseRefused++
		}
	}
}

// checkFence counts a fence and reports whether it processed its delivery
// (a fence that failed processed nothing: fail closed).
func (r *EnforceResult) checkFence(op history.Op, opt EnforceOptions) bool {
	r.Fences++
	if op.Outcome != history.OK {
		r.FencesFailed++
		return false
	}
	e := op.Enf
	if e.Verdict != "process" {
		r.Discarded[e.Reason]++
	}
	if history.IsForged(e.Role) {
		r.ForgedFenced++
		if e.Verdict == "discard" && e.Reason == "invalid_receipt" && !e.Processed {
			r.ForgedRefused++
		} else {
			r.find(EnfForgedAccepted, op.Key, "op #%d: the fence answered %s/%s for event %d's %s receipt", op.Index, e.Verdict, e.Reason, e.Event, e.Role)
		}
	}
	if !e.Processed {
		return false
	}
	if history.IsFalse(e.Role) {
		r.find(EnfFalseAccepted, op.Key, "op #%d: %s processed false event %d (%s)", op.Index, e.Service, e.Event, e.Role)
	}
	if e.Service != opt.Sloppy {
		r.Processed++
	}
	return true
}

// checkProcess counts an unfenced processing: the sloppy service's
// planted ones, or the negative control's.
func (r *EnforceResult) checkProcess(op history.Op, opt EnforceOptions) bool {
	e := op.Enf
	if e == nil || !e.Processed {
		return false
	}
	if e.Service == opt.Sloppy {
		r.Planted++
		return true
	}
	r.Processed++
	switch {
	case history.IsForged(e.Role):
		r.find(EnfForgedAccepted, op.Key, "op #%d: %s processed event %d with a %s receipt without a fence", op.Index, e.Service, e.Event, e.Role)
	case history.IsFalse(e.Role):
		r.find(EnfFalseAccepted, op.Key, "op #%d: %s processed false event %d (%s)", op.Index, e.Service, e.Event, e.Role)
	}
	return true
}
