package client

import (
	"context"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ReportProcessing tells the cluster what service processed (1 to 1000
// reports); each is judged and its verdict returned. A batch is one write
// without an idempotency key, so it is retried only when it certainly did
// not apply: after an unknown outcome a report may be recorded twice if
// the caller sends it again.
func (c *Client) ReportProcessing(ctx context.Context, service string, reports []*optoutv1.ProcessingReport) (*optoutv1.ReportProcessingResponse, error) {
	return unaryWrite(ctx, c, &optoutv1.ReportProcessingRequest{Service: service, Reports: reports},
		func(e endpoint) func(context.Context, *connect.Request[optoutv1.ReportProcessingRequest]) (*connect.Response[optoutv1.ReportProcessingResponse], error) {
			return e.enforce.ReportProcessing
		})
}

// ListViolations returns stored violations, newest first.
func (c *Client) ListViolations(ctx context.Context, req *optoutv1.ListViolationsRequest) (*optoutv1.ListViolationsResponse, error) {
	return unary(ctx, c, retryRead, req,
		func(e endpoint) func(context.Context, *connect.Request[optoutv1.ListViolationsRequest]) (*connect.Response[optoutv1.ListViolationsResponse], error) {
			return e.enforce.ListViolations
		})
}

// ServiceScores returns violations per 10,000 reports over window (0: 24 h)
// for service ("" for all).
func (c *Client) ServiceScores(ctx context.Context, service string, window time.Duration) (*optoutv1.GetServiceScoresResponse, error) {
	req := &optoutv1.GetServiceScoresRequest{Service: service}
	if window != 0 {
		req.Window = durationpb.New(window)
	}
	return unary(ctx, c, retryRead, req,
		func(e endpoint) func(context.Context, *connect.Request[optoutv1.GetServiceScoresRequest]) (*connect.Response[optoutv1.GetServiceScoresResponse], error) {
			return e.enforce.GetServiceScores
		})
}
