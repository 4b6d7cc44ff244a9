package command

import (
	"time"

	"github.com/optoutd/optoutd"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
)

// The builders: one log command from one domain request. They check
// nothing (the caller validated the request) and stamp no time (Encode
// does, and the leader stamps again). Field for field they are what the
// state machine reads back, so a request means the same on every replica.

// Set is the command of one write. With an idempotency key it carries how
// long the key is remembered: window, the leader's --idempotency-window.
func Set(req optoutd.SetRequest, window time.Duration) *fsmv1.SetCommand {
	c := &fsmv1.SetCommand{
		SubjectId:           req.SubjectID,
		Purpose:             req.Purpose,
		State:               fsmv1.State(req.State),
		Source:              req.Source,
		Reason:              req.Reason,
		ExpectedVersion:     req.ExpectedVersion,
		IdempotencyKey:      req.IdempotencyKey,
		ClientSchemaVersion: req.ClientSchemaVersion,
		Caller:              req.Caller,
	}
	if req.IdempotencyKey != "" {
		c.IdempotencyTtlNanos = int64(window)
	}
	return c
}

// DefinePurpose creates or redefines a catalog entry; expectedCatalog, if
// not nil, makes it a compare-and-set on the catalog version.
func DefinePurpose(p optoutd.Purpose, expectedCatalog *uint64, client uint32, caller string) *fsmv1.DefinePurposeCommand {
	return &fsmv1.DefinePurposeCommand{
		Purpose:                purposeDef(p),
		ExpectedCatalogVersion: expectedCatalog,
		ClientSchemaVersion:    client,
		Caller:                 caller,
	}
}

// UpdateSettings changes the replicated settings; nil fields stay.
func UpdateSettings(minSchema *uint32, retention *time.Duration, client uint32, caller string) *fsmv1.UpdateSettingsCommand {
	c := &fsmv1.UpdateSettingsCommand{MinSchemaVersion: minSchema, ClientSchemaVersion: client, Caller: caller}
	if retention != nil {
		r := int64(*retention)
		c.AuditRetentionNanos = &r
	}
	return c
}

// SetMaxOverride changes the cap on an override's lifetime.
func SetMaxOverride(max time.Duration, client uint32, caller string) *fsmv1.UpdateSettingsCommand {
	n := int64(max)
	return &fsmv1.UpdateSettingsCommand{MaxOverrideNanos: &n, ClientSchemaVersion: client, Caller: caller}
}

// EraseSubject removes a subject's identifier and keeps its suppression.
func EraseSubject(subject, reason string, client uint32, caller string) *fsmv1.EraseSubjectCommand {
	return &fsmv1.EraseSubjectCommand{SubjectId: subject, Reason: reason, ClientSchemaVersion: client, Caller: caller}
}

// PutPrincipal creates (or, unless createOnly, replaces) a principal.
func PutPrincipal(p optoutd.Principal, createOnly bool, client uint32, caller string) *fsmv1.PutPrincipalCommand {
	return &fsmv1.PutPrincipalCommand{
		Name: p.Name, Kind: fsmv1.PrincipalKind(p.Kind), Role: fsmv1.Role(p.Role), TokenSha256: p.TokenSHA256,
		CreateOnly: createOnly, ClientSchemaVersion: client, Caller: caller,
	}
}

// DeletePrincipal removes a principal.
func DeletePrincipal(name string, client uint32, caller string) *fsmv1.DeletePrincipalCommand {
	return &fsmv1.DeletePrincipalCommand{Name: name, ClientSchemaVersion: client, Caller: caller}
}

// InitCluster is proposed by the first leader of a cluster: the erasure
// key, the SHA-256 of the bootstrap admin token (nil for none) and the
// purposes to start with (optoutd.StarterCatalog, or none).
func InitCluster(erasureKey, bootstrapTokenSHA256 []byte, catalog []optoutd.Purpose) *fsmv1.InitClusterCommand {
	c := &fsmv1.InitClusterCommand{ErasureKey: erasureKey, BootstrapTokenSha256: bootstrapTokenSHA256}
	if catalog != nil {
		c.Purposes = PurposeDefs(catalog)
	}
	return c
}

// TermStart is proposed by every new leader before it serves (see
// cluster/DESIGN.md, "The read path").
func TermStart(leaderID string) *fsmv1.TermStartCommand {
	return &fsmv1.TermStartCommand{LeaderId: leaderID}
}

// RegisterNode records the API address a node serves on.
func RegisterNode(id, apiAddress string) *fsmv1.RegisterNodeCommand {
	return &fsmv1.RegisterNodeCommand{NodeId: id, ApiAddress: apiAddress}
}

// PurposeDefs is a catalog in the log's form.
func PurposeDefs(catalog []optoutd.Purpose) []*fsmv1.PurposeDef {
	out := make([]*fsmv1.PurposeDef, 0, len(catalog))
	for _, p := range catalog {
		out = append(out, purposeDef(p))
	}
	return out
}

func purposeDef(p optoutd.Purpose) *fsmv1.PurposeDef {
	return &fsmv1.PurposeDef{Name: p.Name, Description: p.Description, DefaultDecision: fsmv1.DefaultDecision(p.Default)}
}

// RotateReceiptKey adds a receipt signing key from seed (32 bytes, drawn by
// the proposer) and makes it current; onlyIfNone adds it only if the
// cluster has no key yet.
func RotateReceiptKey(seed []byte, onlyIfNone bool, client uint32, caller string) *fsmv1.RotateReceiptKeyCommand {
	return &fsmv1.RotateReceiptKeyCommand{Seed: seed, OnlyIfNone: onlyIfNone, ClientSchemaVersion: client, Caller: caller}
}

// CreateOverride opens an override (its id will be the entry's index).
func CreateOverride(o optoutd.Override, client uint32, caller string) *fsmv1.CreateOverrideCommand {
	return &fsmv1.CreateOverrideCommand{
		SubjectId: o.SubjectID, Purpose: o.Purpose, Effect: fsmv1.OverrideEffect(o.Effect), Reason: o.Reason, Owner: o.Owner,
		ExpiresAtUnixNanos: o.ExpiresAt.UnixNano(), ClientSchemaVersion: client, Caller: caller,
	}
}

// RevokeOverride ends an active override before its expiry.
func RevokeOverride(id uint64, reason string, client uint32, caller string) *fsmv1.EndOverrideCommand {
	return &fsmv1.EndOverrideCommand{Id: id, Reason: reason, ClientSchemaVersion: client, Caller: caller}
}

// ExpireOverride records that an override ran to its expiry; the leader
// proposes it once the expiry is due.
func ExpireOverride(id uint64) *fsmv1.EndOverrideCommand {
	return &fsmv1.EndOverrideCommand{Id: id, Expire: true}
}

// RecordReports records one judged ReportProcessing batch.
func RecordReports(b optoutd.ReportBatch, client uint32, caller string) *fsmv1.RecordReportsCommand {
	c := &fsmv1.RecordReportsCommand{Service: b.Service, Reports: b.Reports, WithoutReceipt: b.WithoutReceipt, JudgedAt: b.JudgedAt,
		ClientSchemaVersion: client, Caller: caller}
	for _, v := range b.Violations {
		jv := &fsmv1.JudgedViolation{SubjectHash: v.SubjectHash, Purpose: v.Purpose, Kind: uint32(v.Kind), Evidence: v.Evidence,
			ProcessedVersion: v.ProcessedVersion, DecidingVersion: v.DecidingVersion, ReceiptReadIndex: v.ReceiptReadIndex, Report: v.Report}
		if !v.ProcessedAt.IsZero() {
			jv.ProcessedAtUnixNanos = v.ProcessedAt.UnixNano()
		}
		c.Violations = append(c.Violations, jv)
	}
	return c
}

// SetBatch is the command of a batch of writes. Each write is built as by
// Set, without idempotency fields; with a batch key the command carries how
// long it is remembered: window, the leader's --idempotency-window.
func SetBatch(b optoutd.SetBatchRequest, window time.Duration) *fsmv1.SetBatchCommand {
	c := &fsmv1.SetBatchCommand{
		Sets:                make([]*fsmv1.SetCommand, len(b.Sets)),
		IdempotencyKey:      b.IdempotencyKey,
		ClientSchemaVersion: b.ClientSchemaVersion,
		Caller:              b.Caller,
	}
	for i, s := range b.Sets {
		s.IdempotencyKey, s.ClientSchemaVersion, s.Caller = "", 0, ""
		c.Sets[i] = Set(s, 0)
	}
	if b.IdempotencyKey != "" {
		c.IdempotencyTtlNanos = int64(window)
	}
	return c
}
