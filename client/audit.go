package client

import (
	"context"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// History reads one page of a subject's history.
func (c *Client) History(ctx context.Context, req *optoutv1.HistoryRequest) (*optoutv1.HistoryResponse, error) {
	return unary(ctx, c, retryRead, req, func(e endpoint) func(context.Context, *connect.Request[optoutv1.HistoryRequest]) (*connect.Response[optoutv1.HistoryResponse], error) {
		return e.audit.History
	})
}

// StateAt asks what was decided as of a version.
func (c *Client) StateAt(ctx context.Context, req *optoutv1.StateAtRequest) (*optoutv1.StateAtResponse, error) {
	return unary(ctx, c, retryRead, req, func(e endpoint) func(context.Context, *connect.Request[optoutv1.StateAtRequest]) (*connect.Response[optoutv1.StateAtResponse], error) {
		return e.audit.StateAt
	})
}

// VerifyAudit asks a node to walk the hash chain.
func (c *Client) VerifyAudit(ctx context.Context) (*optoutv1.VerifyAuditResponse, error) {
	return unary(ctx, c, retryRead, &optoutv1.VerifyAuditRequest{}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.VerifyAuditRequest]) (*connect.Response[optoutv1.VerifyAuditResponse], error) {
		return e.audit.VerifyAudit
	})
}

// ListRecords reads one page of every current record (for exports).
func (c *Client) ListRecords(ctx context.Context, req *optoutv1.ListRecordsRequest) (*optoutv1.ListRecordsResponse, error) {
	return unary(ctx, c, retryRead, req, func(e endpoint) func(context.Context, *connect.Request[optoutv1.ListRecordsRequest]) (*connect.Response[optoutv1.ListRecordsResponse], error) {
		return e.audit.ListRecords
	})
}

// ListChanges reads one page of the whole history, oldest first.
func (c *Client) ListChanges(ctx context.Context, req *optoutv1.ListChangesRequest) (*optoutv1.ListChangesResponse, error) {
	return unary(ctx, c, retryRead, req, func(e endpoint) func(context.Context, *connect.Request[optoutv1.ListChangesRequest]) (*connect.Response[optoutv1.ListChangesResponse], error) {
		return e.audit.ListChanges
	})
}
