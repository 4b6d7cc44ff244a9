package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"regexp"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd/api/wire"
)

// Log keys of this package.
const (
	LogKeyRequestID = "request_id"
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
			rid := requestID(req.Header().Get(wire.HeaderRequestID))
			resp, err := next(ctx, req)
			if err == nil {
				resp.Header().Set(wire.HeaderRequestID, rid)
			} else {
				var ce *connect.Error
				if errors.As(err, &ce) {
					ce.Meta().Set(wire.HeaderRequestID, rid)
				}
			}
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
				attrs := []any{LogKeyRequestID, rid, LogKeyProcedure, req.Spec().Procedure, LogKeyCode, code, LogKeyDuration, time.Since(start), LogKeyProtocol, req.Peer().Protocol}
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

var ridRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// requestID keeps a caller's id if it is short and plain, else makes one.
func requestID(h string) string {
	if ridRE.MatchString(h) {
		return h
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
