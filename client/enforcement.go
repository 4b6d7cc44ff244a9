package client

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// WithReceipt asks Gate (or GateBatch) for a signed decision receipt, in
// Decision.Check.Receipt: attach it to the event processed under the
// decision, so that ShouldProcess can fence the event later and
// ReportProcessing can prove it was asked.
func WithReceipt() GateOption { return func(r *optoutv1.CheckRequest) { r.Receipt = true } }

// VerifyReceipt checks a receipt for subject: its signature, that it was
// issued for this subject, and whether the subject's state for its purpose
// changed since.
func (c *Client) VerifyReceipt(ctx context.Context, receipt, subject string) (*optoutv1.VerifyReceiptResponse, error) {
	return unary(ctx, c, retryRead, &optoutv1.VerifyReceiptRequest{Receipt: receipt, SubjectId: subject},
		func(e endpoint) func(context.Context, *connect.Request[optoutv1.VerifyReceiptRequest]) (*connect.Response[optoutv1.VerifyReceiptResponse], error) {
			return e.enforce.VerifyReceipt
		})
}

// ShouldProcess asks whether a queued event may be processed now; see
// Fence for the fail-closed form a consumer should use.
func (c *Client) ShouldProcess(ctx context.Context, service, receipt, subject string) (*optoutv1.ShouldProcessResponse, error) {
	return unary(ctx, c, retryRead, &optoutv1.ShouldProcessRequest{Service: service, Receipt: receipt, SubjectId: subject},
		func(e endpoint) func(context.Context, *connect.Request[optoutv1.ShouldProcessRequest]) (*connect.Response[optoutv1.ShouldProcessResponse], error) {
			return e.enforce.ShouldProcess
		})
}

// ListReceiptKeys returns every receipt key the cluster ever used (public
// halves), newest first.
func (c *Client) ListReceiptKeys(ctx context.Context) (*optoutv1.ListReceiptKeysResponse, error) {
	return unary(ctx, c, retryRead, &optoutv1.ListReceiptKeysRequest{},
		func(e endpoint) func(context.Context, *connect.Request[optoutv1.ListReceiptKeysRequest]) (*connect.Response[optoutv1.ListReceiptKeysResponse], error) {
			return e.enforce.ListReceiptKeys
		})
}

// RotateReceiptKey makes a new receipt signing key current (admin).
func (c *Client) RotateReceiptKey(ctx context.Context) (*optoutv1.RotateReceiptKeyResponse, error) {
	return unaryWrite(ctx, c, &optoutv1.RotateReceiptKeyRequest{},
		func(e endpoint) func(context.Context, *connect.Request[optoutv1.RotateReceiptKeyRequest]) (*connect.Response[optoutv1.RotateReceiptKeyResponse], error) {
			return e.enforce.RotateReceiptKey
		})
}

// FenceStatsOf returns endpoint i's ShouldProcess counts (each node counts
// what it answered; sum over Endpoints for the cluster).
func (c *Client) FenceStatsOf(ctx context.Context, i int) (*optoutv1.GetFenceStatsResponse, error) {
	if i < 0 || i >= len(c.eps) {
		return nil, fmt.Errorf("client: endpoint %d of %d", i, len(c.eps))
	}
	r, err := c.eps[i].enforce.GetFenceStats(ctx, connect.NewRequest(&optoutv1.GetFenceStatsRequest{}))
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}

// Fenced is what Fence decided about one queued event.
type Fenced struct {
	// Process is true only for VERDICT_PROCESS.
	Process bool
	// Answer is the cluster's; nil when the fence failed closed.
	Answer *optoutv1.ShouldProcessResponse
}

// Fence is the consumer's re-check at processing time, for an event that
// waited in a queue (or was redelivered) with the receipt its producer got
// from Gate. It fails closed: on any error the event is not processed and
// the error says why. service names the consumer in the cluster's discard
// counts.
//
//	f, err := c.Fence(ctx, "mailer", ev.Receipt, ev.Subject)
//	if !f.Process {
//		ack(ev) // drop it: the subject opted out, or the receipt is bad
//		return
//	}
func (c *Client) Fence(ctx context.Context, service, receipt, subject string) (Fenced, error) {
	r, err := c.ShouldProcess(ctx, service, receipt, subject)
	if err != nil {
		return Fenced{}, fmt.Errorf("client: fence for %s failed closed: %w", service, err)
	}
	return Fenced{Process: r.Verdict == optoutv1.Verdict_VERDICT_PROCESS, Answer: r}, nil
}

// ProcessFenced runs fn only when Fence says PROCESS, and reports whether
// it ran. fn's error is returned as is.
func (c *Client) ProcessFenced(ctx context.Context, service, receipt, subject string, fn func(context.Context) error) (Fenced, error) {
	f, err := c.Fence(ctx, service, receipt, subject)
	if err != nil || !f.Process {
		return f, err
	}
	return f, fn(ctx)
}
