package api

import (
	"bytes"
	"encoding/json"
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
	b, err := marshalJSON.Marshal(m)
	if err != nil {
		return nil, err
	}
	// protojson adds a space after some commas, differently from one build
	// to the next; curl users diff and grep this output.
	var out bytes.Buffer
	out.Grow(len(b))
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func (c jsonCodec) Unmarshal(b []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("api: %T is not a proto message", v)
	}
	if len(b) == 0 {
		return errors.New("empty body: send a JSON object, e.g. {}")
	}
	if err := unmarshalJSON.Unmarshal(b, m); err != nil {
		return explainEnum(m.ProtoReflect(), err)
	}
	return nil
}

func (c jsonCodec) IsBinary() bool { return false }
