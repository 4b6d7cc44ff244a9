package command

import (
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// payloads is the one table that pairs each command type with its payload
// message. Encode takes the type from it and Decode the message, so no
// caller pairs them by hand. A new command kind is one line here (and a
// fixture, see commandtest).
var payloads = map[fsmv1.CommandType]func() proto.Message{
	fsmv1.CommandType_COMMAND_TYPE_SET:                func() proto.Message { return &fsmv1.SetCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_TERM_START:         func() proto.Message { return &fsmv1.TermStartCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_REGISTER_NODE:      func() proto.Message { return &fsmv1.RegisterNodeCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_INIT_CLUSTER:       func() proto.Message { return &fsmv1.InitClusterCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_DEFINE_PURPOSE:     func() proto.Message { return &fsmv1.DefinePurposeCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_UPDATE_SETTINGS:    func() proto.Message { return &fsmv1.UpdateSettingsCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_ERASE_SUBJECT:      func() proto.Message { return &fsmv1.EraseSubjectCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_PUT_PRINCIPAL:      func() proto.Message { return &fsmv1.PutPrincipalCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_DELETE_PRINCIPAL:   func() proto.Message { return &fsmv1.DeletePrincipalCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_ROTATE_RECEIPT_KEY: func() proto.Message { return &fsmv1.RotateReceiptKeyCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_CREATE_OVERRIDE:    func() proto.Message { return &fsmv1.CreateOverrideCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_END_OVERRIDE:       func() proto.Message { return &fsmv1.EndOverrideCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_RECORD_REPORTS:     func() proto.Message { return &fsmv1.RecordReportsCommand{} },
	fsmv1.CommandType_COMMAND_TYPE_SET_BATCH:          func() proto.Message { return &fsmv1.SetBatchCommand{} },
}

// typesByMessage is payloads the other way round.
var typesByMessage = func() map[protoreflect.FullName]fsmv1.CommandType {
	m := make(map[protoreflect.FullName]fsmv1.CommandType, len(payloads))
	for t, newPayload := range payloads {
		m[newPayload().ProtoReflect().Descriptor().FullName()] = t
	}
	return m
}()

// TypeOf is the command type whose payload is a message like payload.
func TypeOf(payload proto.Message) (fsmv1.CommandType, bool) {
	if payload == nil {
		return 0, false
	}
	t, ok := typesByMessage[payload.ProtoReflect().Descriptor().FullName()]
	return t, ok
}

// newPayload returns an empty payload message for a command type.
func newPayload(t fsmv1.CommandType) (proto.Message, bool) {
	f, ok := payloads[t]
	if !ok {
		return nil, false
	}
	return f(), true
}
