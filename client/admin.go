package client

import (
	"context"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// GetSettings reads the replicated settings.
func (c *Client) GetSettings(ctx context.Context) (*optoutv1.Settings, error) {
	r, err := unary(ctx, c, retryRead, &optoutv1.GetSettingsRequest{}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.GetSettingsRequest]) (*connect.Response[optoutv1.GetSettingsResponse], error) {
		return e.admin.GetSettings
	})
	return r.GetSettings(), err
}

// SetMinSchemaVersion sets the cluster's minimum client schema version.
func (c *Client) SetMinSchemaVersion(ctx context.Context, v uint32) (*optoutv1.Settings, error) {
	r, err := unaryWrite(ctx, c, &optoutv1.SetMinSchemaVersionRequest{MinSchemaVersion: v}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.SetMinSchemaVersionRequest]) (*connect.Response[optoutv1.SetMinSchemaVersionResponse], error) {
		return e.admin.SetMinSchemaVersion
	})
	return r.GetSettings(), err
}

// SetAuditRetention sets how long history is kept (0: forever).
func (c *Client) SetAuditRetention(ctx context.Context, d time.Duration) (*optoutv1.Settings, error) {
	r, err := unaryWrite(ctx, c, &optoutv1.SetAuditRetentionRequest{Retention: durationpb.New(d)}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.SetAuditRetentionRequest]) (*connect.Response[optoutv1.SetAuditRetentionResponse], error) {
		return e.admin.SetAuditRetention
	})
	return r.GetSettings(), err
}
