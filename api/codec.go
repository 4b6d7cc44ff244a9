package api

import (
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonCodec is protojson that shows zero values and refuses unknown fields
// (see doc.go for why).
type jsonCodec struct{ name string }

func jsonCodecs() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithCodec(jsonCodec{name: "json"}),
		connect.WithCodec(jsonCodec{name: "json; charset=utf-8"}),
	}
}

var (
	marshalJSON   = protojson.MarshalOptions{EmitUnpopulated: true}
	unmarshalJSON = protojson.UnmarshalOptions{DiscardUnknown: false}
)

func (c jsonCodec) Name() string { return c.name }

func (c jsonCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("api: %T is not a proto message", v)
	}
	return marshalJSON.Marshal(m)
}

func (c jsonCodec) Unmarshal(b []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("api: %T is not a proto message", v)
	}
	if len(b) == 0 {
		return errors.New("empty body: send a JSON object, e.g. {}")
	}
	return unmarshalJSON.Unmarshal(b, m)
}

func (c jsonCodec) IsBinary() bool { return false }
