package command

import (
	"time"

	"github.com/optoutd/optoutd"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
)

// From the log's and the state's stored forms to the domain types. The
// domain's enums (State, DefaultDecision, AuditKind, Role, PrincipalKind)
// are numbered as the log's are, so each converts with a plain Go
// conversion, both ways; TestEnumNumbering pins the numbers.

// RecordFromStored converts the stored form to the domain type.
func RecordFromStored(k optoutd.Key, sr *fsmv1.StoredRecord) optoutd.Record {
	return optoutd.Record{
		Key:       k,
		State:     optoutd.State(sr.State),
		Version:   sr.Version,
		UpdatedAt: UnixNanos(sr.UpdatedAtUnixNanos),
		Source:    sr.Source,
		Reason:    sr.Reason,
	}
}

// PurposeFromStored converts a stored definition to the domain type.
func PurposeFromStored(sp *fsmv1.StoredPurpose) optoutd.Purpose {
	return optoutd.Purpose{
		Name:        sp.GetDef().GetName(),
		Description: sp.GetDef().GetDescription(),
		Default:     optoutd.DefaultDecision(sp.GetDef().GetDefaultDecision()),
		Version:     sp.Version,
		UpdatedAt:   UnixNanos(sp.UpdatedAtUnixNanos),
	}
}

// AuditFromStored converts a stored entry to the domain type.
func AuditFromStored(a *fsmv1.AuditEntry) optoutd.AuditEntry {
	return optoutd.AuditEntry{
		Version:    a.Version,
		Time:       UnixNanos(a.TimeUnixNanos),
		Kind:       optoutd.AuditKind(a.Kind),
		SubjectID:  a.SubjectId,
		Erased:     a.Erased,
		Purpose:    a.Purpose,
		OldState:   optoutd.State(a.OldState),
		NewState:   optoutd.State(a.NewState),
		OldVersion: a.OldVersion,
		Source:     a.Source,
		Reason:     a.Reason,
		Caller:     a.Caller,
		PrevHash:   a.PrevHash,
		Hash:       a.Hash,
		OverrideID: a.OverrideId,
		Seq:        a.Seq,
	}
}

// OverrideFromStored converts a stored override with its id.
func OverrideFromStored(id uint64, so *fsmv1.StoredOverride) optoutd.Override {
	o := optoutd.Override{
		ID: id, SubjectID: so.SubjectId, Purpose: so.Purpose, Effect: optoutd.OverrideEffect(so.Effect),
		Reason: so.Reason, Owner: so.Owner, CreatedAt: UnixNanos(so.CreatedAtUnixNanos), ExpiresAt: UnixNanos(so.ExpiresAtUnixNanos),
		State: optoutd.OverrideState(so.State), EndedVersion: so.EndedVersion, EndReason: so.EndReason,
		CreatedBy: so.CreatedBy, EndedBy: so.EndedBy,
	}
	if so.EndedAtUnixNanos != 0 {
		o.EndedAt = UnixNanos(so.EndedAtUnixNanos)
	}
	return o
}

// PrincipalFromStored converts a stored principal called name.
func PrincipalFromStored(name string, sp *fsmv1.StoredPrincipal) optoutd.Principal {
	return optoutd.Principal{
		Name:        name,
		Kind:        optoutd.PrincipalKind(sp.Kind),
		Role:        optoutd.Role(sp.Role),
		TokenSHA256: sp.TokenSha256,
		CreatedAt:   UnixNanos(sp.CreatedAtUnixNanos),
	}
}

// UnixNanos is a stamp of the log as a time, in UTC.
func UnixNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// ViolationFromStored converts a stored violation with its id.
func ViolationFromStored(id uint64, sv *fsmv1.StoredViolation) optoutd.Violation {
	j := sv.GetViolation()
	v := optoutd.Violation{
		ID: id, Service: sv.Service, SubjectHash: j.GetSubjectHash(), Purpose: j.GetPurpose(), Kind: optoutd.ViolationKind(j.GetKind()),
		Evidence: j.GetEvidence(), ProcessedVersion: j.GetProcessedVersion(), DecidingVersion: j.GetDecidingVersion(),
		ReceiptReadIndex: j.GetReceiptReadIndex(), ReportedAt: UnixNanos(sv.ReportedAtUnixNanos), ReportVersion: sv.ReportVersion,
		Report: j.GetReport(),
	}
	if n := j.GetProcessedAtUnixNanos(); n != 0 {
		v.ProcessedAt = UnixNanos(n)
	}
	return v
}

// SetRequestOf is the request a SetCommand carries (the inverse of Set,
// for checking a command that arrived over the peer port).
func SetRequestOf(c *fsmv1.SetCommand) optoutd.SetRequest {
	return optoutd.SetRequest{
		Key:             optoutd.Key{SubjectID: c.SubjectId, Purpose: c.Purpose},
		State:           optoutd.State(c.State),
		Source:          c.Source,
		Reason:          c.Reason,
		ExpectedVersion: c.ExpectedVersion,
		IdempotencyKey:  c.IdempotencyKey,
	}
}

// SetBatchRequestOf is the request a SetBatchCommand carries (the inverse
// of SetBatch).
func SetBatchRequestOf(c *fsmv1.SetBatchCommand) optoutd.SetBatchRequest {
	b := optoutd.SetBatchRequest{Sets: make([]optoutd.SetRequest, len(c.Sets)), IdempotencyKey: c.IdempotencyKey}
	for i, sc := range c.Sets {
		b.Sets[i] = SetRequestOf(sc)
	}
	return b
}
