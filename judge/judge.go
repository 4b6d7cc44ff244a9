package judge

import (
	"fmt"
	"math"
	"time"

	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/receipt"
)

// Report is one processed event as a service reports it: the point of
// processing is Version (a read index) or, when Version is 0, At.
type Report struct {
	Subject, Purpose string
	Version          uint64
	At               time.Time
	Receipt          string
}

// Verdict is the judgement of one report.
type Verdict struct {
	Kind     optoutd.ViolationKind
	Evidence string
}

// maxFutureSkew is how far past the judging node's clock a processed_at
// may be (clocks of services and nodes differ).
const maxFutureSkew = time.Minute

// Batch judges reports at the view v, whose read index is readIndex, with
// now the judging node's clock. An error names the report and field that
// made the batch unjudgeable (bad input: nothing is recorded).
func Batch(v optoutd.View, service string, reports []Report, readIndex uint64, now time.Time) (optoutd.ReportBatch, []Verdict, error) {
	b := optoutd.ReportBatch{Service: service, Reports: uint32(len(reports)), JudgedAt: readIndex}
	verdicts := make([]Verdict, len(reports))
	overrides, err := overridesOf(v, reports)
	if err != nil {
		return b, nil, err
	}
	for i, r := range reports {
		field := fmt.Sprintf("reports[%d].", i)
		if err := checkPoint(r, readIndex, now); err != nil {
			return b, nil, optoutd.Errorf(optoutd.Invalid, "%s%s", field, err)
		}
		if _, err := v.Purpose(r.Purpose); err != nil {
			return b, nil, optoutd.WrapError(optoutd.Invalid, err, "%spurpose: %q is not a defined purpose", field, r.Purpose)
		}
		vd, viol, err := one(v, r, overrides)
		if err != nil {
			return b, nil, optoutd.WrapError(optoutd.ErrorCode(err), err, "%s%s", field, optoutd.ErrorMessage(err))
		}
		verdicts[i] = vd
		if r.Receipt == "" {
			b.WithoutReceipt++
		}
		if vd.Kind != optoutd.ViolationNone {
			viol.Report, viol.Kind, viol.Evidence = uint32(i), vd.Kind, vd.Evidence
			b.Violations = append(b.Violations, viol)
		}
	}
	return b, verdicts, nil
}

// overridesOf returns every override, active or ended, of the purposes
// the reports name and of "all": a report may be about processing under
// an override that ended long ago. Overrides are made by people, one at a
// time, so all of a purpose's are few enough to read.
func overridesOf(v optoutd.View, reports []Report) ([]optoutd.Override, error) {
	seen := map[string]bool{}
	var out []optoutd.Override
	for _, p := range append([]string{optoutd.AllPurposes}, purposesOf(reports)...) {
		if seen[p] {
			continue
		}
		seen[p] = true
		list, err := v.ListOverrides(true, p, math.MaxInt)
		if err != nil {
			return nil, err
		}
		out = append(out, list...)
	}
	return out, nil
}

func purposesOf(reports []Report) []string {
	out := make([]string, len(reports))
	for i, r := range reports {
		out[i] = r.Purpose
	}
	return out
}

func checkPoint(r Report, readIndex uint64, now time.Time) error {
	switch {
	case r.Version != 0 && !r.At.IsZero():
		return fmt.Errorf("give processed_version or processed_at, not both")
	case r.Version == 0 && r.At.IsZero():
		return fmt.Errorf("processed_version or processed_at: one is required")
	case r.Version > readIndex:
		return fmt.Errorf("processed_version: %d is after the cluster's commit index %d", r.Version, readIndex)
	case r.At.After(now.Add(maxFutureSkew)):
		return fmt.Errorf("processed_at: %s is in the future", r.At.Format(time.RFC3339))
	}
	return nil
}

// one judges a report; the violation it returns is filled in but for its
// place, kind and evidence.
func one(v optoutd.View, r Report, overrides []optoutd.Override) (Verdict, optoutd.Violation, error) {
	k := optoutd.Key{SubjectID: r.Subject, Purpose: r.Purpose}
	viol := optoutd.Violation{SubjectHash: v.ReceiptSubjectHash(r.Subject), Purpose: r.Purpose, ProcessedVersion: r.Version, ProcessedAt: r.At}
	res, err := decisionAt(v, k, r)
	if err != nil {
		return Verdict{}, viol, err
	}
	res = optoutd.WithOverrides(res, k, inForceAt(overrides, r), pointTime(r))
	viol.DecidingVersion = res.Version
	rc, err := checkReceipt(v, r)
	if err != nil {
		return Verdict{}, viol, err
	}
	viol.ReceiptReadIndex = rc.readIndex
	where := point(r)
	if res.Decision == optoutd.DecisionDeny {
		why := fmt.Sprintf("the subject was opted out of %s by version %d", res.DecidedBy, res.Version)
		switch res.Basis {
		case optoutd.BasisOverride:
			why = fmt.Sprintf("DENY override %d (a kill switch) was in force", res.OverrideID)
		case optoutd.BasisPurposeDefault:
			why = fmt.Sprintf("purpose %s denies by default and the subject never opted in", res.DecidedBy)
		case optoutd.BasisErased:
			why = fmt.Sprintf("the subject was erased at version %d", res.Version)
		}
		if rc.valid && rc.allow && rc.readIndex < res.Version {
			return Verdict{optoutd.ViolationReceiptBeforeOptOut, fmt.Sprintf(
				"processed %s while %s; the event's allow receipt was issued at read index %d, before that: it was not re-checked at processing time",
				where, why, rc.readIndex)}, viol, nil
		}
		return Verdict{optoutd.ViolationProcessedWhileOptedOut, fmt.Sprintf("processed %s while %s", where, why)}, viol, nil
	}
	switch {
	case r.Receipt == "":
		return Verdict{optoutd.ViolationNoReceipt, fmt.Sprintf("processed %s without a receipt: the service did not ask", where)}, viol, nil
	case !rc.valid:
		return Verdict{optoutd.ViolationInvalidReceipt, fmt.Sprintf("processed %s with an invalid receipt: %s", where, rc.problem)}, viol, nil
	case !rc.allow:
		return Verdict{optoutd.ViolationDeniedReceipt, fmt.Sprintf("processed %s although its receipt (read index %d) said deny", where, rc.readIndex)}, viol, nil
	}
	return Verdict{}, viol, nil
}

func point(r Report) string {
	if r.Version != 0 {
		return fmt.Sprintf("at version %d", r.Version)
	}
	return "at " + r.At.UTC().Format(time.RFC3339Nano)
}

// pointTime is the clock reading overrides are judged at: the report's
// time, or (for a version) a time every override that the version's
// entries left active is in force at; see inForceAt.
func pointTime(r Report) time.Time {
	if r.Version != 0 {
		return time.Unix(0, 0)
	}
	return r.At
}

// inForceAt returns the overrides that were in force at the report's
// point, as active overrides (for WithOverrides). By version: created at
// or before it and not yet ended by an entry after it. By time: created
// before it, not expired and not ended by then.
func inForceAt(all []optoutd.Override, r Report) []optoutd.Override {
	var out []optoutd.Override
	for _, o := range all {
		var in bool
		if r.Version != 0 {
			in = o.ID <= r.Version && (o.EndedVersion == 0 || r.Version < o.EndedVersion)
			o.ExpiresAt = time.Unix(1, 0) // after pointTime's zero point
		} else {
			in = !r.At.Before(o.CreatedAt) && r.At.Before(o.ExpiresAt) && (o.EndedAt.IsZero() || r.At.Before(o.EndedAt))
		}
		if in {
			o.State = optoutd.OverrideActive
			out = append(out, o)
		}
	}
	return out
}

type receiptCheck struct {
	valid, allow bool
	readIndex    uint64
	problem      string
}

func checkReceipt(v optoutd.View, r Report) (receiptCheck, error) {
	if r.Receipt == "" {
		return receiptCheck{}, nil
	}
	p, perr := receipt.Parse(r.Receipt)
	if perr != nil { // not a receipt: a verdict, not a failure to judge
		return receiptCheck{problem: perr.Error()}, nil //nolint:nilerr // the report is judged: an invalid receipt
	}
	rc := receiptCheck{readIndex: p.Body.ReadIndex, allow: p.Body.Decision == optoutv1.Decision_DECISION_ALLOW}
	status, problem, err := receipt.CheckParsed(p, v.ReceiptSubjectHash(r.Subject), func(id uint32) ([]byte, bool, error) {
		k, ok, err := v.ReceiptKey(id)
		return k.Seed, ok, err
	})
	switch {
	case err != nil:
		return rc, err
	case status != optoutv1.ReceiptStatus_RECEIPT_STATUS_VALID:
		rc.problem = problem
	case p.Body.Purpose != r.Purpose:
		rc.problem = fmt.Sprintf("issued for purpose %q, not %q", p.Body.Purpose, r.Purpose)
	default:
		rc.valid = true
	}
	return rc, nil
}
