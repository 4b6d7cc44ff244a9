package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/optoutd/optoutd/api/wire"
	"google.golang.org/protobuf/proto"
)

// Client talks to an optoutd cluster through any of its nodes.
type Client struct {
	eps  []endpoint
	next atomic.Int64 // index of the endpoint to try first
	// leader is the index of the endpoint that the nodes' last
	// Optout-Leader hint named, -1 when none matches; writes start there.
	leader     atomic.Int64
	leaderHint atomic.Pointer[string] // the hint leader was computed from
	tr         *http.Transport
	// retryBudget bounds how long one call retries; 0: one pass over the
	// endpoints.
	retryBudget time.Duration
}

type endpoint struct {
	url     string
	host    string // host:port of url, to match Optout-Leader hints
	optout  optoutv1connect.OptOutServiceClient
	cluster optoutv1connect.ClusterServiceClient
	catalog optoutv1connect.CatalogServiceClient
	audit   optoutv1connect.AuditServiceClient
	admin   optoutv1connect.AdminServiceClient
	enforce optoutv1connect.EnforcementServiceClient
}

// Option configures a Client.
type Option func(*options)

type options struct {
	connectOpts []connect.ClientOption
	dialTimeout time.Duration
	tls         *tls.Config
	token       string
	http1       bool
	h2c         bool
	retryBudget time.Duration
}

// WithTLS talks HTTPS (HTTP/2 by ALPN) to endpoints given without a
// scheme, verifying the server with cfg (and presenting cfg's client
// certificate, if any).
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithToken sends "Authorization: Bearer <token>" on every call.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithHTTP1 uses HTTP/1.1 also over TLS (where the default is HTTP/2 by
// ALPN), e.g. behind a proxy that only speaks HTTP/1.1. Without TLS,
// HTTP/1.1 is the default.
func WithHTTP1() Option { return func(o *options) { o.http1 = true } }

// WithH2C uses HTTP/2 without TLS (prior knowledge). gRPC over plaintext
// needs it; the Connect protocol does not, and over HTTP/1.1 a node spends
// about a third less CPU per small request (docs/benchmarks.md), so plain
// HTTP/1.1 with a pool of connections is the default.
func WithH2C() Option { return func(o *options) { o.h2c = true } }

// WithConnectOptions passes options to every generated client, e.g.
// connect.WithGRPC() or connect.WithProtoJSON().
func WithConnectOptions(o ...connect.ClientOption) Option {
	return func(opts *options) { opts.connectOpts = append(opts.connectOpts, o...) }
}

// New returns a client for the given endpoints ("host:port" or a URL).
func New(endpoints []string, opts ...Option) (*Client, error) {
	o := options{dialTimeout: 2 * time.Second, retryBudget: DefaultRetryBudget}
	for _, f := range opts {
		f(&o)
	}
	if len(endpoints) == 0 {
		return nil, errors.New("client: no endpoints")
	}
	var protos http.Protocols
	switch {
	case o.http1:
		protos.SetHTTP1(true)
	case o.tls != nil:
		protos.SetHTTP2(true)
		protos.SetHTTP1(true)
	case o.h2c:
		protos.SetUnencryptedHTTP2(true)
	default:
		protos.SetHTTP1(true)
	}
	dialer := &net.Dialer{Timeout: o.dialTimeout}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return c, nil
		},
		Protocols:           &protos,
		TLSClientConfig:     o.tls,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     time.Minute,
	}
	hc := &http.Client{Transport: tr}
	c := &Client{tr: tr, retryBudget: o.retryBudget}
	c.leader.Store(-1)
	for _, e := range endpoints {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		u := e
		if !strings.Contains(u, "://") {
			if o.tls != nil {
				u = "https://" + u
			} else {
				u = "http://" + u
			}
		}
		copts := append([]connect.ClientOption{connect.WithInterceptors(schemaHeader{token: o.token}, leaderWatch{c})}, o.connectOpts...)
		c.eps = append(c.eps, endpoint{
			url:     u,
			host:    hostOf(u),
			optout:  optoutv1connect.NewOptOutServiceClient(hc, u, copts...),
			cluster: optoutv1connect.NewClusterServiceClient(hc, u, copts...),
			catalog: optoutv1connect.NewCatalogServiceClient(hc, u, copts...),
			audit:   optoutv1connect.NewAuditServiceClient(hc, u, copts...),
			admin:   optoutv1connect.NewAdminServiceClient(hc, u, copts...),
			enforce: optoutv1connect.NewEnforcementServiceClient(hc, u, copts...),
		})
	}
	if len(c.eps) == 0 {
		return nil, errors.New("client: no endpoints")
	}
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// Endpoints lists the endpoint URLs in order.
func (c *Client) Endpoints() []string {
	out := make([]string, len(c.eps))
	for i, e := range c.eps {
		out[i] = e.url
	}
	return out
}

// dialError marks a connection that was never made: nothing was sent.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// do calls fn on each endpoint in turn, starting with the last good one,
// while retry says the failure may be tried elsewhere; after a pass in
// which every endpoint failed so, it backs off and goes round again until
// the deadline or the retry budget, whichever comes first (see retry.go). The error is the last one when retry said
// no, else an *AllFailedError with the last pass's failures.
func do[T any](ctx context.Context, c *Client, retry func(error) bool, fn func(endpoint) (T, error)) (T, error) {
	return doFrom(ctx, c, -1, retry, fn)
}

// doFrom is do starting at endpoint first (a write: the leader's, see
// leader.go), or, when first is -1, at the last good endpoint, which a
// success then moves. A write's success does not move it, so reads stay
// spread over the endpoints.
func doFrom[T any](ctx context.Context, c *Client, first int, retry func(error) bool, fn func(endpoint) (T, error)) (T, error) {
	var zero T
	giveUp := time.Now().Add(c.retryBudget)
	for pass := 0; ; pass++ {
		start := first
		if start < 0 {
			start = int(c.next.Load())
		}
		all := &AllFailedError{}
		for i := range c.eps {
			idx := (start + i) % len(c.eps)
			v, err := fn(c.eps[idx])
			if err == nil {
				if first < 0 {
					c.next.Store(int64(idx))
				}
				return v, nil
			}
			all.Errs = append(all.Errs, EndpointError{Endpoint: c.eps[idx].url, Err: err})
			if !retry(err) || ctx.Err() != nil {
				return zero, err
			}
		}
		wait := backoff(pass+1, jitter)
		if time.Now().Add(wait).After(giveUp) || !sleep(ctx, wait) {
			return zero, all
		}
	}
}

// EndpointError is one endpoint's failure.
type EndpointError struct {
	Endpoint string // the URL tried
	Err      error
}

// AllFailedError is returned when every endpoint was tried and none could
// serve the request. It unwraps to each endpoint's error.
type AllFailedError struct{ Errs []EndpointError }

func (e *AllFailedError) Error() string {
	parts := make([]string, len(e.Errs))
	for i, f := range e.Errs {
		parts[i] = f.Endpoint + ": " + f.Err.Error()
	}
	return fmt.Sprintf("client: every endpoint failed (%d tried): %s", len(e.Errs), strings.Join(parts, "; "))
}

func (e *AllFailedError) Unwrap() []error {
	out := make([]error, len(e.Errs))
	for i, f := range e.Errs {
		out[i] = f.Err
	}
	return out
}

// Unreachable reports whether no endpoint could even be connected to
// (connection refused, no route, dial timeout): wrong addresses, or no
// node running there.
func (e *AllFailedError) Unreachable() bool {
	for _, f := range e.Errs {
		var de *dialError
		if !errors.As(f.Err, &de) {
			return false
		}
	}
	return len(e.Errs) > 0
}

// FromRemovedNode reports whether err came from a node that was removed
// from the cluster (another node may serve the request).
func FromRemovedNode(err error) bool { return fromRemovedNode(err) }

// fromRemovedNode: the answering node was removed from the cluster; its
// refusal says nothing about the request, which it did not apply.
func fromRemovedNode(err error) bool {
	var ce *connect.Error
	return errors.As(err, &ce) && ce.Meta().Get(wire.HeaderNodeRemoved) == "true"
}

// unencodable reports a request this client could not even marshal (a
// string that is not valid UTF-8): connect calls that internal, but no
// node will ever be asked, so it is never retried.
func unencodable(err error) bool { return errors.Is(err, proto.Error) }

// retryRead: reads have no side effects, so any unreachable or unavailable
// node may be skipped.
func retryRead(err error) bool {
	if unencodable(err) {
		return false
	}
	if fromRemovedNode(err) {
		return true
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeUnknown, connect.CodeInternal:
		return true
	}
	return false
}

// retryIdempotent: a write with an idempotency key may be sent again
// whenever its outcome is unknown (a retry of an applied one is answered
// with the first result); a definitive answer (bad input, a conflict, a
// refused credential) is the same everywhere and is returned.
func retryIdempotent(err error) bool {
	if unencodable(err) {
		return false
	}
	if retryWrite(err) {
		return true
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeUnknown, connect.CodeDeadlineExceeded, connect.CodeInternal, connect.CodeAborted:
		return true
	}
	return false
}

// retryWrite: only when the write certainly did not apply.
func retryWrite(err error) bool {
	var de *dialError
	if errors.As(err, &de) || fromRemovedNode(err) {
		return true
	}
	return Outcome(err) == optoutv1.Outcome_OUTCOME_NOT_APPLIED && connect.CodeOf(err) == connect.CodeUnavailable
}

// Outcome returns the WriteOutcome attached to a write's error, or
// OUTCOME_UNKNOWN when there is none (a transport failure): the caller
// cannot know. The outermost verdict counts: a summary that says "unknown"
// stays unknown even though it wraps a retry's refused dial, and a call that
// failed on several endpoints is NOT_APPLIED only when every one of them
// certainly did not apply it.
func Outcome(err error) optoutv1.Outcome {
	if o, ok := outcomeOf(err); ok {
		return o
	}
	return optoutv1.Outcome_OUTCOME_UNKNOWN
}

// outcomeOf walks err's chain from the outside in and stops at the first
// verdict: a WriteOutcome detail, a dial that never connected, or an
// AllFailedError's endpoints taken together.
func outcomeOf(err error) (optoutv1.Outcome, bool) {
	switch e := err.(type) { //nolint:errorlint // the walk below unwraps one level at a time
	case nil:
		return optoutv1.Outcome_OUTCOME_UNSPECIFIED, false
	case *connect.Error:
		for _, d := range e.Details() {
			if m, err := d.Value(); err == nil {
				if wo, ok := m.(*optoutv1.WriteOutcome); ok {
					return wo.Outcome, true
				}
			}
		}
	case *dialError:
		return optoutv1.Outcome_OUTCOME_NOT_APPLIED, true
	case *AllFailedError:
		for _, f := range e.Errs {
			if Outcome(f.Err) != optoutv1.Outcome_OUTCOME_NOT_APPLIED {
				return optoutv1.Outcome_OUTCOME_UNKNOWN, true
			}
		}
		return optoutv1.Outcome_OUTCOME_NOT_APPLIED, len(e.Errs) > 0
	}
	switch u := err.(type) { //nolint:errorlint // one level of the walk
	case interface{ Unwrap() error }:
		return outcomeOf(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if o, ok := outcomeOf(e); ok {
				return o, true
			}
		}
	}
	return optoutv1.Outcome_OUTCOME_UNSPECIFIED, false
}

// IsOutcomeUnknown reports whether a failed write may have been applied.
func IsOutcomeUnknown(err error) bool {
	return err != nil && Outcome(err) == optoutv1.Outcome_OUTCOME_UNKNOWN
}

// CurrentVersion returns the version carried by a compare-and-set conflict.
func CurrentVersion(err error) (uint64, bool) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return 0, false
	}
	for _, d := range ce.Details() {
		if m, err := d.Value(); err == nil {
			if vm, ok := m.(*optoutv1.VersionMismatch); ok {
				return vm.CurrentVersion, true
			}
		}
	}
	return 0, false
}

// Set writes one record. A request without an idempotency key gets one
// (NewIdempotencyKey), so that the client can retry it after an unknown
// outcome: the cluster applies a key once and answers every retry with the
// first result (SetResponse.replayed). The caller's request is not changed.
func (c *Client) Set(ctx context.Context, req *optoutv1.SetRequest) (*optoutv1.SetResponse, error) {
	if req.IdempotencyKey == "" {
		r := proto.CloneOf(req)
		r.IdempotencyKey = NewIdempotencyKey()
		req = r
	}
	return doIdempotent(ctx, c, func(e endpoint) (*optoutv1.SetResponse, error) {
		r, err := e.optout.Set(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	})
}

// SetBatch writes many records in one log entry (see the API's SetBatch),
// retried like Set: without an idempotency key it gets one, so a retry of a
// batch whose outcome was unknown never writes it twice. Per-record
// refusals are in the response's results, not in the error.
//
// A dry run (req.DryRun) writes nothing and is retried like a read.
func (c *Client) SetBatch(ctx context.Context, req *optoutv1.SetBatchRequest) (*optoutv1.SetBatchResponse, error) {
	if !req.DryRun && req.IdempotencyKey == "" {
		r := proto.CloneOf(req)
		r.IdempotencyKey = NewIdempotencyKey()
		req = r
	}
	call := func(e endpoint) (*optoutv1.SetBatchResponse, error) {
		r, err := e.optout.SetBatch(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	}
	if req.DryRun {
		return do(ctx, c, retryRead, call)
	}
	return doIdempotent(ctx, c, call)
}

// Check asks for a decision.
func (c *Client) Check(ctx context.Context, req *optoutv1.CheckRequest) (*optoutv1.CheckResponse, error) {
	return do(ctx, c, retryRead, func(e endpoint) (*optoutv1.CheckResponse, error) {
		r, err := e.optout.Check(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	})
}

// CheckBatch asks for many decisions at one read index.
func (c *Client) CheckBatch(ctx context.Context, req *optoutv1.CheckBatchRequest) (*optoutv1.CheckBatchResponse, error) {
	return do(ctx, c, retryRead, func(e endpoint) (*optoutv1.CheckBatchResponse, error) {
		r, err := e.optout.CheckBatch(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	})
}

// ReadIndex asks for a read index: a commit index, confirmed by a quorum,
// that every write acknowledged before the call began is at or below (a
// Check's read-index round, reading nothing). Cache uses it.
func (c *Client) ReadIndex(ctx context.Context) (*optoutv1.ReadIndexResponse, error) {
	return unary(ctx, c, retryRead, &optoutv1.ReadIndexRequest{}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.ReadIndexRequest]) (*connect.Response[optoutv1.ReadIndexResponse], error) {
		return e.optout.ReadIndex
	})
}

// Get reads one record.
func (c *Client) Get(ctx context.Context, req *optoutv1.GetRequest) (*optoutv1.GetResponse, error) {
	return do(ctx, c, retryRead, func(e endpoint) (*optoutv1.GetResponse, error) {
		r, err := e.optout.Get(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	})
}

// Status asks the first reachable node for its view.
func (c *Client) Status(ctx context.Context) (*optoutv1.StatusResponse, error) {
	return do(ctx, c, retryRead, func(e endpoint) (*optoutv1.StatusResponse, error) {
		r, err := e.cluster.Status(ctx, connect.NewRequest(&optoutv1.StatusRequest{}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	})
}

// StatusOf asks one specific endpoint (by index into Endpoints).
func (c *Client) StatusOf(ctx context.Context, i int) (*optoutv1.StatusResponse, error) {
	r, err := c.eps[i].cluster.Status(ctx, connect.NewRequest(&optoutv1.StatusRequest{}))
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}

// StateDigestOf asks one specific endpoint (by index into Endpoints) for
// the digest of its local state.
func (c *Client) StateDigestOf(ctx context.Context, i int) (*optoutv1.StateDigestResponse, error) {
	r, err := c.eps[i].cluster.StateDigest(ctx, connect.NewRequest(&optoutv1.StateDigestRequest{}))
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}

func unary[Req, Resp any](ctx context.Context, c *Client, retry func(error) bool, req *Req,
	call func(endpoint) func(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error)) (*Resp, error) {
	return do(ctx, c, retry, func(e endpoint) (*Resp, error) {
		r, err := call(e)(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	})
}

// unaryWrite is unary for a write retried only when it certainly did not
// apply (retryWrite), starting at the leader's endpoint when known.
func unaryWrite[Req, Resp any](ctx context.Context, c *Client, req *Req,
	call func(endpoint) func(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error)) (*Resp, error) {
	return doFrom(ctx, c, c.writeStart(), retryWrite, func(e endpoint) (*Resp, error) {
		r, err := call(e)(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	})
}

// EraseSubject erases a subject (a write: never repeated unless it
// certainly did not apply).
func (c *Client) EraseSubject(ctx context.Context, req *optoutv1.EraseSubjectRequest) (*optoutv1.EraseSubjectResponse, error) {
	return unaryWrite(ctx, c, req, func(e endpoint) func(context.Context, *connect.Request[optoutv1.EraseSubjectRequest]) (*connect.Response[optoutv1.EraseSubjectResponse], error) {
		return e.optout.EraseSubject
	})
}
