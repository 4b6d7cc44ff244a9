package api

import (
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// noUnknownFields rejects binary requests that carry fields this server does
// not know (the JSON codec rejects them while decoding).
func noUnknownFields(m proto.Message) error {
	if len(m.ProtoReflect().GetUnknown()) > 0 {
		return invalidf("request: has fields this server does not know; is the client built against a newer schema?")
	}
	return nil
}

// key validates a subject and purpose; prefix names the enclosing field.
func key(prefix, subject, purpose string) (optoutd.Key, error) {
	k := optoutd.Key{SubjectID: subject, Purpose: purpose}
	if err := optoutd.ValidateKey(k); err != nil {
		return k, invalidf("%s%s", prefix, optoutd.ErrorMessage(err))
	}
	return k, nil
}

// The domain's enums (State, Decision, Basis, DefaultDecision, AuditKind,
// Role, PrincipalKind) are numbered as the API's are, so each converts with
// a plain Go conversion, both ways; TestEnumNumbering pins the numbers.

func recordToProto(r optoutd.Record) *optoutv1.Record {
	return &optoutv1.Record{
		SubjectId: r.SubjectID,
		Purpose:   r.Purpose,
		State:     optoutv1.State(r.State),
		Version:   r.Version,
		UpdatedAt: timestamppb.New(r.UpdatedAt),
		Source:    r.Source,
		Reason:    r.Reason,
	}
}

func checkToProto(c optoutd.CheckResult, readIndex, catalog uint64) *optoutv1.CheckResponse {
	return &optoutv1.CheckResponse{
		Decision:         optoutv1.Decision(c.Decision),
		State:            optoutv1.State(c.State),
		Version:          c.Version,
		ReadIndex:        readIndex,
		Basis:            optoutv1.Basis(c.Basis),
		DecidedByPurpose: c.DecidedBy,
		CatalogVersion:   catalog,
		OverrideId:       c.OverrideID,
	}
}

func auditToProto(a optoutd.AuditEntry) *optoutv1.AuditEntry {
	return &optoutv1.AuditEntry{
		Version:    a.Version,
		Time:       timestamppb.New(a.Time),
		Kind:       optoutv1.AuditKind(a.Kind),
		SubjectId:  a.SubjectID,
		Erased:     a.Erased,
		Purpose:    a.Purpose,
		OldState:   optoutv1.State(a.OldState),
		NewState:   optoutv1.State(a.NewState),
		OldVersion: a.OldVersion,
		Source:     a.Source,
		Reason:     a.Reason,
		Caller:     a.Caller,
		PrevHash:   a.PrevHash,
		Hash:       a.Hash,
		OverrideId: a.OverrideID,
		Seq:        a.Seq,
	}
}

func purposeToProto(p optoutd.Purpose) *optoutv1.Purpose {
	return &optoutv1.Purpose{
		Name:            p.Name,
		Description:     p.Description,
		DefaultDecision: optoutv1.Default(p.Default),
		Version:         p.Version,
		UpdatedAt:       timestamppb.New(p.UpdatedAt),
	}
}

func settingsToProto(s optoutd.Settings) *optoutv1.Settings {
	return &optoutv1.Settings{
		MinSchemaVersion:      s.MinSchemaVersion,
		AuditRetention:        durationpb.New(s.AuditRetention),
		CatalogVersion:        s.CatalogVersion,
		AuditCompactedThrough: s.AuditCompactedThrough,
		ServerSchemaVersion:   optoutd.SchemaVersion,
		MaxOverride:           durationpb.New(s.MaxOverride),
	}
}

// setRequest validates a SetRequest and converts it.
func setRequest(m *optoutv1.SetRequest) (optoutd.SetRequest, error) {
	if err := noUnknownFields(m); err != nil {
		return optoutd.SetRequest{}, err
	}
	k, err := key("", m.SubjectId, m.Purpose)
	if err != nil {
		return optoutd.SetRequest{}, err
	}
	if m.State != optoutv1.State_STATE_OPTED_OUT && m.State != optoutv1.State_STATE_OPTED_IN {
		return optoutd.SetRequest{}, invalidf("state: must be STATE_OPTED_OUT or STATE_OPTED_IN, got %v", m.State)
	}
	req := optoutd.SetRequest{
		Key:             k,
		State:           optoutd.State(m.State),
		Source:          m.Source,
		Reason:          m.Reason,
		ExpectedVersion: m.ExpectedVersion,
		IdempotencyKey:  m.IdempotencyKey,
	}
	if err := optoutd.ValidateSet(req); err != nil {
		return req, invalidf("%s", optoutd.ErrorMessage(err))
	}
	return req, nil
}
