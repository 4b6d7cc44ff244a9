package optoutd

import "strconv"

// Decision is the answer to "may I process?".
type Decision int

const (
	DecisionUnspecified Decision = iota
	DecisionAllow
	DecisionDeny
)

func (d Decision) String() string {
	switch d {
	case DecisionAllow:
		return "allow"
	case DecisionDeny:
		return "deny"
	default:
		return "unspecified"
	}
}

// CheckResult is the decision for one key and the fact that decided it.
// State and Version describe the deciding record (zero for a default).
type CheckResult struct {
	Decision  Decision
	State     State
	Version   uint64
	Basis     Basis
	DecidedBy string
	// OverrideID is the override that decided (Basis is BasisOverride).
	OverrideID uint64
}

// Basis says which fact decided a Check.
type Basis int

const (
	BasisUnspecified Basis = iota
	// BasisPurposeRecord: the subject's record for the purpose decided.
	BasisPurposeRecord
	// BasisAllRecord: the subject's opt-out of "all" decided (deny wins).
	BasisAllRecord
	// BasisPurposeDefault: no record; the purpose's default decided.
	BasisPurposeDefault
	// BasisErased: the subject was erased; its suppression decided.
	BasisErased
	// BasisOverride: an override decided (see WithOverrides).
	BasisOverride
)

func (b Basis) String() string {
	names := [...]string{"unspecified", "purpose_record", "all_record", "purpose_default", "erased", "override"}
	if b < 0 || int(b) >= len(names) {
		return "basis(" + strconv.Itoa(int(b)) + ")"
	}
	return names[b]
}

// Decide is the one rule that turns facts into a decision. all is the
// subject's "all" record (or its erasure suppression, with erased set); rec
// is the record for the purpose. An opt-out of "all" denies everything; a
// purpose record decides next; with neither, the purpose's default does.
// An opt-in of "all" grants nothing: consent is given per purpose.
func Decide(p Purpose, all Record, erased bool, rec Record) CheckResult {
	switch {
	case all.State == StateOptedOut:
		b := BasisAllRecord
		if erased {
			b = BasisErased
		}
		return CheckResult{Decision: DecisionDeny, State: StateOptedOut, Version: all.Version, Basis: b, DecidedBy: AllPurposes}
	case rec.State == StateOptedOut:
		return CheckResult{Decision: DecisionDeny, State: rec.State, Version: rec.Version, Basis: BasisPurposeRecord, DecidedBy: p.Name}
	case rec.State == StateOptedIn:
		return CheckResult{Decision: DecisionAllow, State: rec.State, Version: rec.Version, Basis: BasisPurposeRecord, DecidedBy: p.Name}
	case p.Default == DefaultDeny:
		return CheckResult{Decision: DecisionDeny, Basis: BasisPurposeDefault, DecidedBy: p.Name}
	default:
		return CheckResult{Decision: DecisionAllow, Basis: BasisPurposeDefault, DecidedBy: p.Name}
	}
}
