package api

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
)

// Log keys of this package.
const (
	LogKeyProcedure = "procedure"
	LogKeyCode      = "code"
	LogKeyDuration  = "duration"
	LogKeyProtocol  = "protocol"
)

// newLogInterceptor logs every unary call at debug, and server-side
// failures at warn. It never logs request fields: subject ids are personal
// data.
func newLogInterceptor(log *slog.Logger) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			start := time.Now()
			resp, err := next(ctx, req)
			code := "ok"
			level := slog.LevelDebug
			if err != nil {
				c := connect.CodeOf(err)
				code = c.String()
				if c == connect.CodeInternal || c == connect.CodeUnknown || c == connect.CodeUnavailable {
					level = slog.LevelWarn
				}
			}
			if log.Enabled(ctx, level) {
				attrs := []any{LogKeyProcedure, req.Spec().Procedure, LogKeyCode, code, LogKeyDuration, time.Since(start), LogKeyProtocol, req.Peer().Protocol}
				var ce *connect.Error
				if errors.As(err, &ce) && level > slog.LevelDebug {
					attrs = append(attrs, "message", ce.Message())
				}
				log.Log(ctx, level, "rpc", attrs...)
			}
			return resp, err
		}
	}
}
