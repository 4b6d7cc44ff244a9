package client

import (
	"context"
	"net/http"
	"strconv"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api/wire"
)

// schemaHeader stamps optoutd.SchemaVersion (and the bearer token, if any)
// on every request.
type schemaHeader struct{ token string }

var schemaValue = strconv.FormatUint(uint64(optoutd.SchemaVersion), 10)

func (h schemaHeader) set(hd http.Header) {
	hd.Set(wire.HeaderSchemaVersion, schemaValue)
	if h.token != "" {
		hd.Set("Authorization", "Bearer "+h.token)
	}
}

func (h schemaHeader) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		h.set(req.Header())
		return next(ctx, req)
	}
}

func (h schemaHeader) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		h.set(conn.RequestHeader())
		return conn
	}
}

func (schemaHeader) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
