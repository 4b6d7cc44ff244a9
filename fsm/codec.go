package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	fsmv1 "github.com/optoutd/optoutd/fsm/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// FormatVersion is the newest command format this binary writes and reads.
// A node that meets a higher one halts: it was written by a newer optoutd and
// may mean something this binary cannot know. Bump it only for a change that
// old nodes must not silently misread; additive fields do not need it.
//
// Format 2 added InitCluster, DefinePurpose, UpdateSettings and
// EraseSubject, and the idempotency, schema and caller fields of Set.
// Format 3 added PutPrincipal and DeletePrincipal.
const FormatVersion uint32 = 3

// olderRelease, set at link time, makes a test build read command formats
// 1..N only, like the release before format N+1:
//
//	go build -ldflags "-X github.com/optoutd/optoutd/fsm.olderRelease=2"
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
// machine; it is never skipped.
var (
	ErrEmptyCommand   = errors.New("fsm: empty command")
	ErrUnknownType    = errors.New("fsm: unknown command type")
	ErrNewerFormat    = errors.New("fsm: command format is newer than this binary")
	ErrMalformed      = errors.New("fsm: malformed command")
	ErrMissingPayload = errors.New("fsm: command has no payload")
)

// Encode stamps the envelope with FormatVersion and the given time and
// marshals it with the typed payload.
func Encode(typ fsmv1.CommandType, payload proto.Message, stamp time.Time) ([]byte, error) {
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
	var payload proto.Message
	switch c.Type {
	case fsmv1.CommandType_COMMAND_TYPE_SET:
		payload = &fsmv1.SetCommand{}
	case fsmv1.CommandType_COMMAND_TYPE_TERM_START:
		payload = &fsmv1.TermStartCommand{}
	case fsmv1.CommandType_COMMAND_TYPE_REGISTER_NODE:
		payload = &fsmv1.RegisterNodeCommand{}
	case fsmv1.CommandType_COMMAND_TYPE_INIT_CLUSTER:
		payload = &fsmv1.InitClusterCommand{}
	case fsmv1.CommandType_COMMAND_TYPE_DEFINE_PURPOSE:
		payload = &fsmv1.DefinePurposeCommand{}
	case fsmv1.CommandType_COMMAND_TYPE_UPDATE_SETTINGS:
		payload = &fsmv1.UpdateSettingsCommand{}
	case fsmv1.CommandType_COMMAND_TYPE_ERASE_SUBJECT:
		payload = &fsmv1.EraseSubjectCommand{}
	case fsmv1.CommandType_COMMAND_TYPE_PUT_PRINCIPAL:
		payload = &fsmv1.PutPrincipalCommand{}
	case fsmv1.CommandType_COMMAND_TYPE_DELETE_PRINCIPAL:
		payload = &fsmv1.DeletePrincipalCommand{}
	default:
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

// recordKey encodes (subject, purpose) so that all of a subject's records
// are adjacent and no two keys collide: uvarint(len(subject)) | subject |
// purpose. Purposes cannot contain the bytes of a length prefix ambiguity
// because the length is explicit.
func recordKey(subject, purpose string) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(subject)+len(purpose))
	b = binary.AppendUvarint(b, uint64(len(subject)))
	b = append(b, subject...)
	return append(b, purpose...)
}

// splitRecordKey reverses recordKey.
func splitRecordKey(k []byte) (subject, purpose string, err error) {
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) < n {
		return "", "", fmt.Errorf("%w: bad record key %x", ErrMalformed, k)
	}
	return string(k[w : w+int(n)]), string(k[w+int(n):]), nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func readU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
