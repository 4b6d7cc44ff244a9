package api

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/prometheus/client_golang/prometheus"
)

// apiMetrics are the request metrics. Labels carry procedures, codes,
// purposes and decisions, never subject ids (personal data, and unbounded).
type apiMetrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	decisions *prometheus.CounterVec
	overrides *prometheus.CounterVec
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "optoutd_rpc_requests_total",
			Help: "RPCs served, by procedure and Connect code (ok for success).",
		}, []string{"procedure", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "optoutd_rpc_duration_seconds",
			Help:    "RPC latency as the server saw it, by procedure (streams: until the handler returned).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"procedure"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "optoutd_decisions_total",
			Help: "Check and CheckBatch answers, by purpose and decision.",
		}, []string{"purpose", "decision"}),
		overrides: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "optoutd_override_decisions_total",
			Help: "Check and CheckBatch answers an override decided, by purpose and effect (allow: an opt-out bypassed; deny: a kill switch).",
		}, []string{"purpose", "effect"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.decisions, m.overrides)
	}
	return m
}

func (m *apiMetrics) observe(procedure string, start time.Time, err error) {
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
		var ce *connect.Error
		if !errors.As(err, &ce) && errors.Is(err, context.Canceled) {
			code = connect.CodeCanceled.String()
		}
	}
	m.requests.WithLabelValues(procedure, code).Inc()
	m.latency.WithLabelValues(procedure).Observe(time.Since(start).Seconds())
}

func (m *apiMetrics) decided(purpose string, r optoutd.CheckResult) {
	m.decisions.WithLabelValues(purpose, r.Decision.String()).Inc()
	if r.OverrideID != 0 {
		m.overrides.WithLabelValues(purpose, r.Decision.String()).Inc()
	}
}

// metricsInterceptor counts and times every call.
type metricsInterceptor struct{ m *apiMetrics }

func (i metricsInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		resp, err := next(ctx, req)
		if !req.Spec().IsClient {
			i.m.observe(req.Spec().Procedure, start, err)
		}
		return resp, err
	}
}

func (i metricsInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i metricsInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		i.m.observe(conn.Spec().Procedure, start, err)
		return err
	}
}
