package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
)

// Gater answers "may I process this?": a *Client, or a *Cache.
type Gater interface {
	Gate(ctx context.Context, subject, purpose string, opts ...GateOption) (Decision, error)
}

var _ Gater = (*Client)(nil)

type decisionKey struct{}

// DecisionFrom returns the decision a gating middleware made for this
// request, for the handler to log or to attach its receipt to what it
// produces.
func DecisionFrom(ctx context.Context) (Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(Decision)
	return d, ok
}

// HTTPGate gates every request of an http.Handler on one purpose: the
// request goes on only when the cluster allows processing for its subject.
type HTTPGate struct {
	Gater   Gater
	Purpose string
	// Subject names the subject of a request (a header, a path segment,
	// the session). An error, or "", refuses the request with 400.
	Subject func(*http.Request) (string, error)
	// HonourGPC: a request that carries the Global Privacy Control signal
	// ("Sec-GPC: 1") is refused for this purpose without asking the
	// cluster. Set it for purposes that GPC opts out of where you operate
	// (sale or sharing, targeted advertising).
	HonourGPC bool
	// Options are passed to every Gate call (e.g. WithReceipt).
	Options []GateOption
	// Denied writes the answer to a refused request. The default answers
	// 403 for a deny, 503 with Retry-After when the gate failed closed and
	// 400 for a request without a subject.
	Denied func(w http.ResponseWriter, r *http.Request, d Decision, err error)
}

// errNoSubject is the refusal of a request whose subject is unknown.
var errNoSubject = errors.New("client: the request names no subject")

// ErrGPC is the refusal of a request with "Sec-GPC: 1" for a purpose that
// honours it.
var ErrGPC = errors.New("client: the request carries Sec-GPC: 1, an opt-out of this purpose")

// Wrap returns next behind the gate.
func (g HTTPGate) Wrap(next http.Handler) http.Handler {
	denied := g.Denied
	if denied == nil {
		denied = defaultDenied
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject, err := g.Subject(r)
		if err == nil && subject == "" {
			err = errNoSubject
		}
		if err != nil {
			denied(w, r, deny(), fmt.Errorf("%w: %w", errNoSubject, err))
			return
		}
		if g.HonourGPC && r.Header.Get("Sec-GPC") == "1" {
			denied(w, r, Decision{}, ErrGPC)
			return
		}
		d, err := g.Gater.Gate(r.Context(), subject, g.Purpose, g.Options...)
		if !d.Allow {
			if err == nil {
				err = ErrDenied
			}
			denied(w, r, d, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), decisionKey{}, d)))
	})
}

func defaultDenied(w http.ResponseWriter, _ *http.Request, d Decision, err error) {
	switch {
	case errors.Is(err, errNoSubject):
		http.Error(w, "no subject", http.StatusBadRequest)
	case d.FailedClosed:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "cannot confirm that processing is allowed; try again", http.StatusServiceUnavailable)
	default:
		http.Error(w, "processing is not allowed for this subject and purpose", http.StatusForbidden)
	}
}

// GateInterceptor gates every unary Connect (or gRPC) call a server
// handles on one purpose; subject names the subject of a request. A
// refused call fails with PermissionDenied (a deny) or Unavailable (the
// gate failed closed), and the handler never runs. Streaming calls pass
// through: gate them in the handler.
func GateInterceptor(g Gater, purpose string, subject func(connect.AnyRequest) (string, error), opts ...GateOption) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if req.Spec().IsClient {
				return next(ctx, req)
			}
			s, err := subject(req)
			if err == nil && s == "" {
				err = errNoSubject
			}
			if err != nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%w: %w", errNoSubject, err))
			}
			d, err := g.Gate(ctx, s, purpose, opts...)
			switch {
			case d.Allow:
				return next(context.WithValue(ctx, decisionKey{}, d), req)
			case d.FailedClosed:
				return nil, connect.NewError(connect.CodeUnavailable, err)
			default:
				return nil, connect.NewError(connect.CodePermissionDenied, ErrDenied)
			}
		}
	}
}
