package client

import (
	"context"
	"errors"
	"fmt"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// Decision is Gate's answer: may this event be processed now?
type Decision struct {
	// Allow is true only when the cluster said DECISION_ALLOW.
	Allow bool
	// Check is the cluster's answer (decision, basis, record version, read
	// index, receipt, override); nil when the gate failed closed.
	Check *optoutv1.CheckResponse
	// FailedClosed is true when no answer could be had: Allow is false and
	// Gate's error says why.
	FailedClosed bool
	// Cached is true when a Cache answered from memory; Check's read index
	// is then the cache's fresh read index (the answer is at least that
	// new), and its receipt is empty.
	Cached bool
}

// deny is the fail-closed answer.
func deny() Decision { return Decision{FailedClosed: true} }

// GateOption adjusts one Gate call.
type GateOption func(*optoutv1.CheckRequest)

// Gate is the call a service puts in front of processing an event about
// subject for purpose. It fails closed: on any error, timeout or
// unreachable cluster it answers "deny" and returns the error for the
// log. It never answers from a cache or a stale replica (a Cache, which
// does answer from memory, proves each answer current first): the cluster's
// Check is linearizable, and a node that cannot confirm it is current
// refuses instead of answering. Reads are retried across nodes (with
// backoff) until ctx's deadline; give ctx the deadline your processing can
// afford.
//
//	d, err := c.Gate(ctx, "u1", "email_marketing")
//	if !d.Allow {
//		if err != nil { log.Warn("gate failed closed", "err", err) }
//		return // drop the event, or park it
//	}
func (c *Client) Gate(ctx context.Context, subject, purpose string, opts ...GateOption) (Decision, error) {
	req := &optoutv1.CheckRequest{SubjectId: subject, Purpose: purpose}
	for _, o := range opts {
		o(req)
	}
	r, err := c.Check(ctx, req)
	if err != nil {
		return deny(), fmt.Errorf("client: gate %s/%s failed closed: %w", subject, purpose, err)
	}
	return Decision{Allow: r.Decision == optoutv1.Decision_DECISION_ALLOW, Check: r}, nil
}

// GateCheck is one check of a GateBatch.
type GateCheck struct {
	Subject, Purpose string
}

// GateBatch is Gate for many checks: all answered at one read index
// (CheckBatch, up to 1000 a call; a longer list is split and each part has
// its own read index). On any error every decision is "deny" and
// FailedClosed, and the error says why.
func (c *Client) GateBatch(ctx context.Context, checks []GateCheck, opts ...GateOption) ([]Decision, error) {
	out := make([]Decision, len(checks))
	for start := 0; start < len(checks); start += maxBatch {
		end := min(start+maxBatch, len(checks))
		req := &optoutv1.CheckBatchRequest{Checks: make([]*optoutv1.CheckRequest, 0, end-start)}
		for _, ch := range checks[start:end] {
			cr := &optoutv1.CheckRequest{SubjectId: ch.Subject, Purpose: ch.Purpose}
			for _, o := range opts {
				o(cr)
			}
			req.Checks = append(req.Checks, cr)
		}
		r, err := c.CheckBatch(ctx, req)
		if err == nil && len(r.Results) != end-start {
			err = fmt.Errorf("client: batch of %d checks answered with %d results", end-start, len(r.Results))
		}
		if err != nil {
			for i := range out {
				out[i] = deny()
			}
			return out, fmt.Errorf("client: gate batch failed closed: %w", err)
		}
		for i, res := range r.Results {
			out[start+i] = Decision{Allow: res.Decision == optoutv1.Decision_DECISION_ALLOW, Check: res}
		}
	}
	return out, nil
}

// maxBatch is the cluster's limit of checks per CheckBatch.
const maxBatch = 1000

// ErrDenied is what the gating middleware reports for a denied request.
var ErrDenied = errors.New("client: processing denied for this subject and purpose")
