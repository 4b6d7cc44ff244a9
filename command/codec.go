package command

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// FormatVersion is the newest command format this binary writes and reads.
// A node that meets a higher one halts: it was written by a newer optoutd and
// may mean something this binary cannot know. Bump it only for a change that
// old nodes must not silently misread; additive fields do not need it.
//
// Format 2 added InitCluster, DefinePurpose, UpdateSettings and
// EraseSubject, and the idempotency, schema and caller fields of Set.
// Format 3 added PutPrincipal and DeletePrincipal. Format 4 added
// RotateReceiptKey and the settings' receipt key.
const FormatVersion uint32 = 4

// olderRelease, set at link time, makes a test build read command formats
// 1..N only, like the release before format N+1:
//
//	go build -ldflags "-X github.com/optoutd/optoutd/command.olderRelease=2"
//
// The process tests build such a node to make it meet entries it cannot
// apply (a halt), then replace it with a normal build. It is empty in
// every real build.
var olderRelease string

// readableFormat is the newest format Decode accepts.
var readableFormat = sync.OnceValue(func() uint32 {
	if n, err := strconv.ParseUint(olderRelease, 10, 32); err == nil && n >= 1 && uint32(n) < FormatVersion {
		return uint32(n)
	}
	return FormatVersion
})

// Sentinel errors of command decoding. A decode failure halts the state
// machine; it is never skipped. Their text still says "fsm", where they were
// first defined: it is part of the halt that a node logs and reports on
// /readyz, and operators and the golden tests match it.
var (
	ErrEmptyCommand   = errors.New("fsm: empty command")
	ErrUnknownType    = errors.New("fsm: unknown command type")
	ErrNewerFormat    = errors.New("fsm: command format is newer than this binary")
	ErrMalformed      = errors.New("fsm: malformed command")
	ErrMissingPayload = errors.New("fsm: command has no payload")
)

// Encode stamps the envelope with FormatVersion, the type that goes with
// payload (see types.go) and the given time, and marshals it with the
// payload.
func Encode(payload proto.Message, stamp time.Time) ([]byte, error) {
	typ, ok := TypeOf(payload)
	if !ok {
		return nil, fmt.Errorf("%w: %T is no command payload", ErrUnknownType, payload)
	}
	p, err := proto.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("fsm: marshal payload: %w", err)
	}
	return proto.Marshal(&fsmv1.Command{
		FormatVersion:      FormatVersion,
		Type:               typ,
		StampedAtUnixNanos: stamp.UnixNano(),
		Payload:            p,
	})
}

// Restamp replaces the time in an encoded command. The leader calls it on
// forwarded commands, so only the leader's clock ever reaches the log.
func Restamp(data []byte, stamp time.Time) ([]byte, error) {
	var c fsmv1.Command
	if err := proto.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	c.StampedAtUnixNanos = stamp.UnixNano()
	return proto.Marshal(&c)
}

// Decoded is a command with its payload decoded into the concrete type.
type Decoded struct {
	Type    fsmv1.CommandType
	Stamp   int64
	Payload proto.Message
}

// Decode parses an envelope and its payload. Every failure is an error that
// names what was wrong; a caller applying the log must halt on it.
func Decode(data []byte) (Decoded, error) {
	if len(data) == 0 {
		return Decoded{}, ErrEmptyCommand
	}
	var c fsmv1.Command
	if err := proto.Unmarshal(data, &c); err != nil {
		return Decoded{}, fmt.Errorf("%w: envelope: %w", ErrMalformed, err)
	}
	if len(c.ProtoReflect().GetUnknown()) > 0 {
		return Decoded{}, fmt.Errorf("%w: envelope has fields this binary does not know", ErrNewerFormat)
	}
	if c.FormatVersion == 0 || c.FormatVersion > readableFormat() {
		return Decoded{}, fmt.Errorf("%w: format %d, this binary knows 1..%d", ErrNewerFormat, c.FormatVersion, readableFormat())
	}
	payload, ok := newPayload(c.Type)
	if !ok {
		return Decoded{}, fmt.Errorf("%w: %d", ErrUnknownType, int32(c.Type))
	}
	if err := proto.Unmarshal(c.Payload, payload); err != nil {
		return Decoded{}, fmt.Errorf("%w: %s payload: %w", ErrMalformed, c.Type, err)
	}
	if len(payload.ProtoReflect().GetUnknown()) > 0 {
		return Decoded{}, fmt.Errorf("%w: %s payload has fields this binary does not know", ErrNewerFormat, c.Type)
	}
	return Decoded{Type: c.Type, Stamp: c.StampedAtUnixNanos, Payload: payload}, nil
}
