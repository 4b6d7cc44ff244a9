package client

import (
	"context"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// CreateOverride opens an override (ALLOW needs the admin role). It is a
// write without an idempotency key, so it is retried only when it
// certainly did not apply.
func (c *Client) CreateOverride(ctx context.Context, req *optoutv1.CreateOverrideRequest) (*optoutv1.Override, error) {
	r, err := unaryWrite(ctx, c, req,
		func(e endpoint) func(context.Context, *connect.Request[optoutv1.CreateOverrideRequest]) (*connect.Response[optoutv1.CreateOverrideResponse], error) {
			return e.enforce.CreateOverride
		})
	return r.GetOverride(), err
}

// ListOverrides returns overrides, newest first.
func (c *Client) ListOverrides(ctx context.Context, req *optoutv1.ListOverridesRequest) (*optoutv1.ListOverridesResponse, error) {
	return unary(ctx, c, retryRead, req,
		func(e endpoint) func(context.Context, *connect.Request[optoutv1.ListOverridesRequest]) (*connect.Response[optoutv1.ListOverridesResponse], error) {
			return e.enforce.ListOverrides
		})
}

// RevokeOverride ends an active override before its expiry.
func (c *Client) RevokeOverride(ctx context.Context, id uint64, reason string) (*optoutv1.Override, error) {
	r, err := unaryWrite(ctx, c, &optoutv1.RevokeOverrideRequest{Id: id, Reason: reason},
		func(e endpoint) func(context.Context, *connect.Request[optoutv1.RevokeOverrideRequest]) (*connect.Response[optoutv1.RevokeOverrideResponse], error) {
			return e.enforce.RevokeOverride
		})
	return r.GetOverride(), err
}

// SetMaxOverrideDuration caps how long an override may last (admin).
func (c *Client) SetMaxOverrideDuration(ctx context.Context, d time.Duration) (*optoutv1.Settings, error) {
	r, err := unaryWrite(ctx, c, &optoutv1.SetMaxOverrideDurationRequest{MaxOverride: durationpb.New(d)},
		func(e endpoint) func(context.Context, *connect.Request[optoutv1.SetMaxOverrideDurationRequest]) (*connect.Response[optoutv1.SetMaxOverrideDurationResponse], error) {
			return e.enforce.SetMaxOverrideDuration
		})
	return r.GetSettings(), err
}
