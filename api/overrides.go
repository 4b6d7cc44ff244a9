package api

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// decideNow is the one decision of the API: the subject's choices under
// the catalog (View.Check), then the overrides in force by this node's
// clock. Every answer that says allow or deny goes through it.
func decideNow(v optoutd.View, k optoutd.Key) (optoutd.CheckResult, error) {
	res, err := v.Check(k)
	if err != nil {
		return res, err
	}
	ovs, err := v.Overrides(k)
	if err != nil || len(ovs) == 0 {
		return res, err
	}
	return optoutd.WithOverrides(res, k, ovs, time.Now()), nil
}

func (s *enforcementServer) CreateOverride(ctx context.Context, req *connect.Request[optoutv1.CreateOverrideRequest]) (*connect.Response[optoutv1.CreateOverrideResponse], error) {
	m := req.Msg
	if err := noUnknownFields(m); err != nil {
		return nil, rejectedWrite(err)
	}
	o, err := overrideRequest(m)
	if err != nil {
		return nil, rejectedWrite(err)
	}
	c := callOf(ctx)
	if o.Effect == optoutd.OverrideAllow && c.caller != "" && c.role != optoutd.RoleAdmin {
		return nil, rejectedWrite(connect.NewError(connect.CodePermissionDenied,
			errors.New("an ALLOW override bypasses opt-outs and needs the admin role; "+c.caller+" has role "+c.role.String())))
	}
	// The cap is checked here against this node's clock for a clear
	// message, and again by the state machine against the leader's stamp.
	var max time.Duration
	if _, err := s.store.Read(ctx, func(v optoutd.View) error {
		st, err := v.Settings()
		max = st.MaxOverride
		return err
	}); err != nil {
		return nil, readError(err)
	}
	if ttl := time.Until(o.ExpiresAt); ttl > max {
		return nil, rejectedWrite(invalidf("expires_at: %s is %v from now, over the cluster's max_override of %v",
			o.ExpiresAt.Format(time.RFC3339), ttl.Round(time.Second), max))
	}
	out, err := s.store.CreateOverride(ctx, o, c.schema, c.caller)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return connect.NewResponse(&optoutv1.CreateOverrideResponse{Override: overrideToProto(out)}), nil
}

// overrideRequest checks every field and names the first bad one.
func overrideRequest(m *optoutv1.CreateOverrideRequest) (optoutd.Override, error) {
	o := optoutd.Override{SubjectID: m.SubjectId, Purpose: m.Purpose, Effect: optoutd.OverrideEffect(m.Effect), Reason: m.Reason, Owner: m.Owner}
	if m.SubjectId != "" {
		if err := optoutd.ValidateSubjectID(m.SubjectId); err != nil {
			return o, err
		}
	}
	if err := optoutd.ValidatePurpose(m.Purpose); err != nil {
		return o, err
	}
	switch {
	case o.Effect != optoutd.OverrideAllow && o.Effect != optoutd.OverrideDeny:
		return o, invalidf("effect: must be OVERRIDE_EFFECT_ALLOW or OVERRIDE_EFFECT_DENY")
	case m.Reason == "":
		return o, invalidf("reason: required: say why the override is needed")
	case m.Owner == "":
		return o, invalidf("owner: required: name who answers for the override")
	case m.ExpiresAt == nil:
		return o, invalidf("expires_at: required: every override must expire")
	}
	if err := optoutd.ValidateText("reason", m.Reason, optoutd.MaxReasonBytes); err != nil {
		return o, err
	}
	if err := optoutd.ValidateText("owner", m.Owner, optoutd.MaxOwnerBytes); err != nil {
		return o, err
	}
	if err := m.ExpiresAt.CheckValid(); err != nil {
		return o, invalidf("expires_at: %v", err)
	}
	o.ExpiresAt = m.ExpiresAt.AsTime()
	if !o.ExpiresAt.After(time.Now()) {
		return o, invalidf("expires_at: %s is not in the future", o.ExpiresAt.Format(time.RFC3339))
	}
	return o, nil
}

func (s *enforcementServer) ListOverrides(ctx context.Context, req *connect.Request[optoutv1.ListOverridesRequest]) (*connect.Response[optoutv1.ListOverridesResponse], error) {
	m := req.Msg
	if err := noUnknownFields(m); err != nil {
		return nil, err
	}
	if m.Purpose != "" {
		if err := optoutd.ValidatePurpose(m.Purpose); err != nil {
			return nil, readError(err)
		}
	}
	limit, err := pageSize("limit", m.Limit)
	if err != nil {
		return nil, err
	}
	var list []optoutd.Override
	idx, err := s.store.Read(ctx, func(v optoutd.View) (err error) {
		list, err = v.ListOverrides(m.IncludeEnded, m.Purpose, limit)
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.ListOverridesResponse{ReadIndex: idx}
	for _, o := range list {
		out.Overrides = append(out.Overrides, overrideToProto(o))
	}
	return connect.NewResponse(out), nil
}

func (s *enforcementServer) RevokeOverride(ctx context.Context, req *connect.Request[optoutv1.RevokeOverrideRequest]) (*connect.Response[optoutv1.RevokeOverrideResponse], error) {
	m := req.Msg
	if err := noUnknownFields(m); err != nil {
		return nil, rejectedWrite(err)
	}
	if m.Id == 0 {
		return nil, rejectedWrite(invalidf("id: required"))
	}
	if m.Reason == "" {
		return nil, rejectedWrite(invalidf("reason: required: say why the override ends early"))
	}
	if err := optoutd.ValidateText("reason", m.Reason, optoutd.MaxReasonBytes); err != nil {
		return nil, rejectedWrite(err)
	}
	c := callOf(ctx)
	o, err := s.store.EndOverride(ctx, m.Id, false, m.Reason, c.schema, c.caller)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return connect.NewResponse(&optoutv1.RevokeOverrideResponse{Override: overrideToProto(o)}), nil
}

func (s *enforcementServer) SetMaxOverrideDuration(ctx context.Context, req *connect.Request[optoutv1.SetMaxOverrideDurationRequest]) (*connect.Response[optoutv1.SetMaxOverrideDurationResponse], error) {
	m := req.Msg
	if err := noUnknownFields(m); err != nil {
		return nil, rejectedWrite(err)
	}
	if m.MaxOverride == nil {
		return nil, rejectedWrite(invalidf("max_override: required"))
	}
	if err := m.MaxOverride.CheckValid(); err != nil {
		return nil, rejectedWrite(invalidf("max_override: %v", err))
	}
	d := m.MaxOverride.AsDuration()
	if d < optoutd.MinMaxOverride || d > optoutd.MaxMaxOverride {
		return nil, rejectedWrite(invalidf("max_override: %v must be between %v and %v", d, optoutd.MinMaxOverride, optoutd.MaxMaxOverride))
	}
	c := callOf(ctx)
	st, err := s.store.SetMaxOverride(ctx, d, c.schema, c.caller)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return connect.NewResponse(&optoutv1.SetMaxOverrideDurationResponse{Settings: settingsToProto(st)}), nil
}

func overrideToProto(o optoutd.Override) *optoutv1.Override {
	out := &optoutv1.Override{
		Id: o.ID, SubjectId: o.SubjectID, Purpose: o.Purpose, Effect: optoutv1.OverrideEffect(o.Effect),
		Reason: o.Reason, Owner: o.Owner, CreatedAt: timestamppb.New(o.CreatedAt), ExpiresAt: timestamppb.New(o.ExpiresAt),
		State: optoutv1.OverrideState(o.State), EndedVersion: o.EndedVersion, EndReason: o.EndReason,
		CreatedBy: o.CreatedBy, EndedBy: o.EndedBy,
	}
	if !o.EndedAt.IsZero() {
		out.EndedAt = timestamppb.New(o.EndedAt)
	}
	return out
}
