package checker

import (
	"math"
	"strconv"

	"github.com/optoutd/optoutd/jepsen/history"
)

// span is when a processing decided: a fence's call and return, or the
// instant of an unfenced processing.
func span(p history.Op) (from, to int64) { return p.Call, max(p.Return, p.Call) }

// returned is an op's return time, +∞ for an unknown outcome (it may
// still take effect at any time).
func returned(op history.Op) int64 {
	if op.Outcome == history.Unknown {
		return math.MaxInt64
	}
	return op.Return
}

// checkAfterOptOut: for every opt-out acknowledged before the processing
// started, some write must have been able to make processing legal at its
// point: a re-opt-in that may have taken effect after that opt-out (it
// did not return before the opt-out was invoked) and before the
// processing decided (it was invoked before the processing ended), or an
// ALLOW override for the subject that may have been in force then
// (invoked before the processing ended, and the processing started before
// the override's expiry plus the allowed clock skew). Unknown outcomes
// count as possibly applied; not-applied and refused writes do not.
func (r *EnforceResult) checkAfterOptOut(p history.Op, s *subjectOps, opt EnforceOptions) {
	if s == nil {
		return
	}
	from, to := span(p)
	byOverride, byOptIn := false, false
	for _, out := range s.outs {
		if out.Return >= from {
			continue // not acknowledged before the processing started
		}
		excused := false
		for _, in := range s.ins {
			if in.Call < to && returned(in) > out.Call {
				excused, byOptIn = true, true
				break
			}
		}
		if excused {
			continue
		}
		for _, o := range s.overrides {
			if o.Call < to && from < o.Enf.ExpiresAt+int64(opt.Skew) {
				excused, byOverride = true, true
				break
			}
		}
		if excused {
			continue
		}
		how := "its fence (read index " + uitoa(p.Enf.ReadIndex) + ") said PROCESS"
		if p.Type == history.Process {
			how = "it was processed without a fence"
		}
		r.find(EnfAfterOptOut, p.Key, "op #%d: %s processed event %d (delivery %d) of %s at %s–%s s; %s, but the opt-out op #%d (version %d) was acknowledged at %s s and no re-opt-in or ALLOW override could have been in force",
			p.Index, p.Enf.Service, p.Enf.Event, p.Enf.Delivery, p.Key, secs3(from), secs3(to), how, out.Index, out.Version, secs3(out.Return))
		return
	}
	switch {
	case byOverride && !byOptIn:
		r.UnderOverride++
	case byOptIn && p.Enf.ReceiptIndex > 0 && receiptBeforeOptOut(p, s):
		r.AfterReOptIn++
	}
}

// receiptBeforeOptOut: an opt-out acknowledged before the processing has
// a version above the event's receipt.
func receiptBeforeOptOut(p history.Op, s *subjectOps) bool {
	for _, out := range s.outs {
		if out.Return < p.Call && out.Version > p.Enf.ReceiptIndex {
			return true
		}
	}
	return false
}

// checkVerdicts: every planted processing must be judged a violation in
// every verdict it got; a clean processing (fenced PROCESS, reported at
// the fence's read index with its genuine allow receipt) in none. A
// processing without any verdict is unreported.
func (r *EnforceResult) checkVerdicts(p history.Op, vs []history.ReportEntry, opt EnforceOptions) {
	e := p.Enf
	if len(vs) == 0 {
		r.Unreported++
		if !opt.Interrupted {
			r.find(EnfUnreported, p.Key, "op #%d: %s's processing of event %d (%s) never got a verdict from ReportProcessing", p.Index, e.Service, e.Event, e.Role)
		}
		return
	}
	flagged, clean := 0, 0
	var evidence string
	for _, v := range vs {
		if v.Kind == "" {
			clean++
		} else {
			flagged++
			evidence = v.Kind + ": " + v.Evidence
		}
	}
	switch {
	case e.Service == opt.Sloppy:
		if clean > 0 {
			r.find(EnfPlantedMissed, p.Key, "op #%d: the planted violation %s (event %d) was judged clean in %d of %d verdicts", p.Index, e.Role, e.Event, clean, len(vs))
		} else {
			r.PlantedFlagged++
		}
	case !opt.Fencing:
		if flagged > 0 {
			r.UnfencedFlagged++
		}
	case e.Role == history.RoleGenuine && p.Type == history.Fence:
		r.CleanReports++
		if flagged > 0 {
			note := ""
			if e.CurrentVersion > e.ReadIndex {
				note = "; the fence decided on version " + uitoa(e.CurrentVersion) + ", after the read index it returned"
			}
			r.find(EnfCleanFlagged, p.Key, "op #%d: %s fenced event %d (receipt index %d) with PROCESS at read index %d and reported it so; the cluster judged it %s%s",
				p.Index, e.Service, e.Event, e.ReceiptIndex, e.ReadIndex, evidence, note)
		}
	}
}

// checkStored: every violation a verdict named must be in its service's
// final listing (violations are replicated writes: a kill or a new leader
// must not lose one). Services that could not be listed are not checked
// here (the harness reports the failed listing).
func (r *EnforceResult) checkStored(reports []history.Op, stored map[string]map[uint64]bool) {
	for _, op := range reports {
		ids, listed := stored[op.Key]
		for _, e := range op.Enf.Reports {
			if e.Kind == "" || e.ViolationID == 0 {
				continue
			}
			r.Violations++
			switch {
			case !listed:
			case ids[e.ViolationID]:
				r.Stored++
			default:
				r.find(EnfViolationLost, op.Key, "op #%d: ReportProcessing named violation %d (%s) of processing op #%d, but the final ListViolations of %s does not hold it",
					op.Index, e.ViolationID, e.Kind, e.Op, op.Key)
			}
		}
	}
}

// checkVacuous: an ordinary run must have processed events, discarded
// some for an opt-out made while they waited, refused forged receipts and
// seen planted violations flagged, or it proved nothing.
func (r *EnforceResult) checkVacuous(opt EnforceOptions) {
	if opt.Interrupted {
		return
	}
	need := func(ok bool, what string) {
		if !ok {
			r.find(EnfVacuous, "", "%s", what)
		}
	}
	need(r.Processed > 0, "no clean service processed an event")
	need(r.PlantedFlagged > 0, "no planted violation was judged")
	if opt.Fencing {
		need(r.Discarded["denied_now"] > 0, "no fence discarded an event for an opt-out made while it waited")
		need(r.ForgedRefused > 0, "no forged receipt was fenced")
	}
}

func uitoa(v uint64) string { return strconv.FormatUint(v, 10) }

// secs3 is a run-clock time in seconds, to the millisecond.
func secs3(ns int64) string { return strconv.FormatFloat(float64(ns)/1e9, 'f', 3, 64) }
