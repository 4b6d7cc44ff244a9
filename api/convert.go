package api

import (
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"google.golang.org/protobuf/proto"
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

func stateFromProto(s optoutv1.State) optoutd.State {
	switch s {
	case optoutv1.State_STATE_OPTED_OUT:
		return optoutd.StateOptedOut
	case optoutv1.State_STATE_OPTED_IN:
		return optoutd.StateOptedIn
	default:
		return optoutd.StateUnspecified
	}
}

func stateToProto(s optoutd.State) optoutv1.State {
	switch s {
	case optoutd.StateOptedOut:
		return optoutv1.State_STATE_OPTED_OUT
	case optoutd.StateOptedIn:
		return optoutv1.State_STATE_OPTED_IN
	default:
		return optoutv1.State_STATE_UNSPECIFIED
	}
}

func decisionToProto(d optoutd.Decision) optoutv1.Decision {
	switch d {
	case optoutd.DecisionAllow:
		return optoutv1.Decision_DECISION_ALLOW
	case optoutd.DecisionDeny:
		return optoutv1.Decision_DECISION_DENY
	default:
		return optoutv1.Decision_DECISION_UNSPECIFIED
	}
}

func recordToProto(r optoutd.Record) *optoutv1.Record {
	return &optoutv1.Record{
		SubjectId: r.SubjectID,
		Purpose:   r.Purpose,
		State:     stateToProto(r.State),
		Version:   r.Version,
		UpdatedAt: timestamppb.New(r.UpdatedAt),
		Source:    r.Source,
		Reason:    r.Reason,
	}
}

func checkToProto(c optoutd.CheckResult, readIndex uint64) *optoutv1.CheckResponse {
	return &optoutv1.CheckResponse{
		Decision:  decisionToProto(c.Decision),
		State:     stateToProto(c.State),
		Version:   c.Version,
		ReadIndex: readIndex,
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
		State:           stateFromProto(m.State),
		Source:          m.Source,
		Reason:          m.Reason,
		ExpectedVersion: m.ExpectedVersion,
	}
	if err := optoutd.ValidateSet(req); err != nil {
		return req, invalidf("%s", optoutd.ErrorMessage(err))
	}
	return req, nil
}
