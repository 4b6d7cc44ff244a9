package client

import (
	"context"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// DefinePurpose creates or redefines a purpose.
func (c *Client) DefinePurpose(ctx context.Context, req *optoutv1.DefinePurposeRequest) (*optoutv1.DefinePurposeResponse, error) {
	return unaryWrite(ctx, c, req, func(e endpoint) func(context.Context, *connect.Request[optoutv1.DefinePurposeRequest]) (*connect.Response[optoutv1.DefinePurposeResponse], error) {
		return e.catalog.DefinePurpose
	})
}

// ListPurposes lists the catalog.
func (c *Client) ListPurposes(ctx context.Context) (*optoutv1.ListPurposesResponse, error) {
	return unary(ctx, c, retryRead, &optoutv1.ListPurposesRequest{}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.ListPurposesRequest]) (*connect.Response[optoutv1.ListPurposesResponse], error) {
		return e.catalog.ListPurposes
	})
}

// GetPurpose reads one purpose.
func (c *Client) GetPurpose(ctx context.Context, name string) (*optoutv1.GetPurposeResponse, error) {
	return unary(ctx, c, retryRead, &optoutv1.GetPurposeRequest{Name: name}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.GetPurposeRequest]) (*connect.Response[optoutv1.GetPurposeResponse], error) {
		return e.catalog.GetPurpose
	})
}
