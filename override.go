package optoutd

import (
	"strconv"
	"time"
)

// OverrideEffect is what an override does in its scope.
type OverrideEffect int

const (
	OverrideEffectUnspecified OverrideEffect = iota
	// OverrideAllow bypasses opt-outs (an incident's break-glass); it never
	// bypasses an erased subject's suppression.
	OverrideAllow
	// OverrideDeny pauses all processing (a kill switch).
	OverrideDeny
)

func (e OverrideEffect) String() string {
	names := [...]string{"unspecified", "allow", "deny"}
	if e < 0 || int(e) >= len(names) {
		return "overrideeffect(" + strconv.Itoa(int(e)) + ")"
	}
	return names[e]
}

// OverrideState is where an override is in its life.
type OverrideState int

const (
	OverrideStateUnspecified OverrideState = iota
	OverrideActive
	OverrideRevoked
	// OverrideExpired: it ran to its expiry without being revoked.
	OverrideExpired
)

func (s OverrideState) String() string {
	names := [...]string{"unspecified", "active", "revoked", "expired"}
	if s < 0 || int(s) >= len(names) {
		return "overridestate(" + strconv.Itoa(int(s)) + ")"
	}
	return names[s]
}

// Override is a replicated, expiring exception to the subjects' choices.
// Its scope is one purpose (or "all"), and one subject or, with SubjectID
// empty, every subject.
type Override struct {
	ID        uint64
	SubjectID string
	Purpose   string
	Effect    OverrideEffect
	Reason    string
	Owner     string
	CreatedAt time.Time
	ExpiresAt time.Time
	State     OverrideState
	EndedAt   time.Time
	// EndedVersion is the log index that revoked or expired it.
	EndedVersion uint64
	EndReason    string
	CreatedBy    string
	EndedBy      string
}

// Limits of overrides.
const (
	DefaultMaxOverride = 24 * time.Hour
	MinMaxOverride     = time.Minute
	MaxMaxOverride     = 30 * 24 * time.Hour
	MaxOwnerBytes      = 128
)

// Covers reports whether o's scope includes k.
func (o Override) Covers(k Key) bool {
	return (o.Purpose == k.Purpose || o.Purpose == AllPurposes) && (o.SubjectID == "" || o.SubjectID == k.SubjectID)
}

// InForceAt reports whether o is active and not past its expiry at now.
// A node checks the expiry against its own clock too, so an override
// whose expiry entry is not yet applied is not honoured once it is due.
func (o Override) InForceAt(now time.Time) bool {
	return o.State == OverrideActive && now.Before(o.ExpiresAt)
}

// WithOverrides applies the overrides in force to a decision: a DENY in
// scope denies; else an ALLOW in scope allows, unless the subject was
// erased. The lowest id decides among several of one effect, so every node
// names the same one.
func WithOverrides(res CheckResult, k Key, ovs []Override, now time.Time) CheckResult {
	var allow, deny *Override
	for i := range ovs {
		o := &ovs[i]
		if !o.Covers(k) || !o.InForceAt(now) {
			continue
		}
		switch {
		case o.Effect == OverrideDeny && (deny == nil || o.ID < deny.ID):
			deny = o
		case o.Effect == OverrideAllow && (allow == nil || o.ID < allow.ID):
			allow = o
		}
	}
	switch {
	case deny != nil:
		return CheckResult{Decision: DecisionDeny, State: res.State, Version: res.Version, Basis: BasisOverride, DecidedBy: deny.Purpose, OverrideID: deny.ID}
	case allow != nil && res.Basis != BasisErased:
		return CheckResult{Decision: DecisionAllow, State: res.State, Version: res.Version, Basis: BasisOverride, DecidedBy: allow.Purpose, OverrideID: allow.ID}
	}
	return res
}
