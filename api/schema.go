package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api/wire"
)

type (
	schemaKey struct{}
	callerKey struct{}
	roleKey   struct{}
)

// call is what the interceptors learned about a request.
type call struct {
	schema uint32 // 0: no header
	caller string // the authenticated principal; "" when anonymous
	role   optoutd.Role
}

func callOf(ctx context.Context) call {
	s, _ := ctx.Value(schemaKey{}).(uint32)
	c, _ := ctx.Value(callerKey{}).(string)
	r, _ := ctx.Value(roleKey{}).(optoutd.Role)
	return call{schema: s, caller: c, role: r}
}

func parseSchema(v string) (uint32, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 {
		return 0, connect.NewError(connect.CodeInvalidArgument,
			fmt.Errorf("%s header: %q is not a schema version (a positive integer; this server speaks %d)", wire.HeaderSchemaVersion, truncateHeader(v), optoutd.SchemaVersion))
	}
	return uint32(n), nil
}

func truncateHeader(v string) string {
	if len(v) > 32 {
		return v[:32] + "..."
	}
	return v
}

// schemaInterceptor reads the client's schema version into the context
// and stamps the server's on every response, errors included.
type schemaInterceptor struct{}

var serverSchema = strconv.FormatUint(uint64(optoutd.SchemaVersion), 10)

func (schemaInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		v, err := parseSchema(req.Header().Get(wire.HeaderSchemaVersion))
		if err != nil {
			return nil, stampSchema(err)
		}
		resp, err := next(context.WithValue(ctx, schemaKey{}, v), req)
		if err != nil {
			return nil, stampSchema(err)
		}
		resp.Header().Set(wire.HeaderSchemaVersion, serverSchema)
		return resp, nil
	}
}

func stampSchema(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		ce.Meta().Set(wire.HeaderSchemaVersion, serverSchema)
		return ce
	}
	return err
}

func (schemaInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (schemaInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		conn.ResponseHeader().Set(wire.HeaderSchemaVersion, serverSchema)
		v, err := parseSchema(conn.RequestHeader().Get(wire.HeaderSchemaVersion))
		if err != nil {
			return err
		}
		return next(context.WithValue(ctx, schemaKey{}, v), conn)
	}
}

// gate refuses a read from a client below the cluster's minimum schema
// version. Writes are refused by the state machine itself (it sees the
// version in the command), so a minimum raised concurrently applies to both
// at the same point of the log.
func gate(s optoutd.Settings, client uint32) error {
	min := s.MinSchemaVersion
	switch {
	case min == 0 || client >= min:
		return nil
	case client == 0:
		return optoutd.Errorf(optoutd.FailedPrecondition,
			"the request carries no %s header, and the cluster requires schema version %d or newer (this server speaks %d)", wire.HeaderSchemaVersion, min, optoutd.SchemaVersion)
	default:
		return optoutd.Errorf(optoutd.FailedPrecondition,
			"client schema version %d is below the cluster's minimum %d; upgrade the client", client, min)
	}
}
