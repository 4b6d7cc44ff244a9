package workload

import (
	"context"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/jepsen/history"
	"github.com/optoutd/optoutd/receipt"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// consume takes service's deliveries until the run ends. A clean service
// fences each one (fail closed: a fence that failed puts the delivery back
// on the queue); the sloppy service plants its violations; in the negative
// control a clean service processes on the receipt alone.
func (e *Enforce) consume(ctx context.Context, a *actor, service string) {
	q := e.queues[service]
	for {
		d, ok := q.Take(ctx)
		if !ok {
			return
		}
		switch {
		case service == SloppyService:
			e.sloppy(a, d)
		case e.cfg.SkipFence:
			e.unfenced(a, d)
		default:
			e.fence(a, q, d)
		}
	}
}

// fence is the clean path: client.ProcessFenced at processing time, the
// delivery processed only on PROCESS, reported at the fence's read index
// with the receipt it carried.
func (e *Enforce) fence(a *actor, q *Queue, d *Delivery) {
	ev := d.Event
	ctx, cancel := a.request()
	defer cancel()
	op := history.Op{Type: history.Fence, Key: ev.Subject, Call: e.rec.Now(), Enf: e.enf(ev, d)}
	processed := false
	f, err := a.cl.ProcessFenced(ctx, ev.Service, ev.Receipt, ev.Subject, func(context.Context) error {
		processed = true // the processing itself: the report below
		return nil
	})
	if err != nil {
		op.Outcome, op.Code, op.Error = history.Fail, codeOf(err), errText(err)
		a.record(op)
		switch connect.CodeOf(err) {
		case connect.CodeInvalidArgument, connect.CodeInternal:
			// Refused, or not even encodable (a subject that is not
			// UTF-8): trying again will not help. Dropped unprocessed.
		default:
			q.Nack(d)
		}
		return
	}
	v := f.Answer.GetVerification()
	op.Outcome, op.Enf.Processed = history.OK, processed
	op.Enf.Verdict, op.Enf.Reason = verdictName(f.Answer.GetVerdict()), reasonName(f.Answer.GetReason())
	op.Enf.ReadIndex, op.Enf.CurrentVersion = v.GetReadIndex(), v.GetCurrentVersion()
	i := a.record(op)
	if processed {
		e.reporters[ev.Service].add(i, e.report(ev, v.GetReadIndex(), ev.Receipt))
	}
}

// unfenced is the negative control's clean service: it processes whenever
// the receipt is a genuine allow by the cluster's public keys, however
// long the event waited, and reports the moment truthfully.
func (e *Enforce) unfenced(a *actor, d *Delivery) {
	p, err := receipt.Parse(d.Event.Receipt)
	if err != nil || p.Body.Decision != optoutv1.Decision_DECISION_ALLOW || !e.signedByCluster(p) {
		return
	}
	e.processed(a, d, 0, d.Event.Receipt)
}

// sloppy processes every delivery without a fence and reports it
// truthfully: an unfenced or forged one at a read index it asks for (or,
// when that fails, at the time), a receipt-less one at the time.
func (e *Enforce) sloppy(a *actor, d *Delivery) {
	switch d.Event.Role {
	case history.RolePlantedNoReceipt:
		e.processed(a, d, 0, "")
	default:
		e.processed(a, d, e.readIndex(a), d.Event.Receipt)
	}
}

// processed records an unfenced processing and queues its report, at
// version when it is not 0, else at the wall clock.
func (e *Enforce) processed(a *actor, d *Delivery, version uint64, rcpt string) {
	now := e.rec.Now()
	op := history.Op{Type: history.Process, Key: d.Event.Subject, Call: now, Return: now, Outcome: history.OK, Enf: e.enf(d.Event, d)}
	op.Enf.Processed, op.Enf.ReadIndex = true, version
	i := a.record(op)
	e.reporters[d.Event.Service].add(i, e.report(d.Event, version, rcpt))
}

func (e *Enforce) readIndex(a *actor) uint64 {
	ctx, cancel := a.request()
	defer cancel()
	op := history.Op{Type: history.ReadIndex, Key: SloppyService, Call: e.rec.Now(), Enf: &history.Enforce{Service: SloppyService}}
	r, err := a.cl.ReadIndex(ctx)
	if err != nil {
		op.Outcome, op.Code, op.Error = history.Fail, codeOf(err), errText(err)
		a.record(op)
		return 0
	}
	op.Outcome, op.Version = history.OK, r.GetReadIndex()
	a.record(op)
	return r.GetReadIndex()
}

// report is the ProcessingReport of a processed event.
func (e *Enforce) report(ev *Event, version uint64, rcpt string) *optoutv1.ProcessingReport {
	r := &optoutv1.ProcessingReport{SubjectId: ev.Subject, Purpose: ev.Purpose, ProcessedVersion: version, Receipt: rcpt}
	if version == 0 {
		r.ProcessedAt = timestamppb.New(time.Now())
	}
	return r
}

func (e *Enforce) enf(ev *Event, d *Delivery) *history.Enforce {
	return &history.Enforce{Event: ev.ID, Delivery: d.N, Role: ev.Role, Service: ev.Service, Purpose: ev.Purpose, ReceiptIndex: ev.ReceiptIndex}
}

// loadKeys fetches the cluster's public receipt keys for the negative
// control's offline check, retrying until ctx ends.
func (e *Enforce) loadKeys(ctx context.Context) {
	a, err := e.newActor()
	if err != nil {
		return
	}
	defer a.cl.Close()
	for ctx.Err() == nil {
		rctx, cancel := a.request()
		r, err := a.cl.ListReceiptKeys(rctx)
		cancel()
		if err == nil && len(r.GetKeys()) > 0 {
			e.mu.Lock()
			e.keys = map[uint32][]byte{}
			for _, k := range r.GetKeys() {
				e.keys[k.GetKeyId()] = k.GetPublicKey()
			}
			e.mu.Unlock()
			return
		}
		// No key yet: the first receipt creates one.
		e.gate(a, history.RoleGenuine, e.subjects[0], EnforcePurpose)
		a.pause(ctx, 200*time.Millisecond)
	}
}

func (e *Enforce) signedByCluster(p receipt.Parsed) bool {
	e.mu.Lock()
	pub, ok := e.keys[p.Signed.KeyId]
	e.mu.Unlock()
	return ok && receipt.Verify(p, pub)
}

func verdictName(v optoutv1.Verdict) string {
	switch v {
	case optoutv1.Verdict_VERDICT_PROCESS:
		return "process"
	case optoutv1.Verdict_VERDICT_DISCARD:
		return "discard"
	}
	return v.String()
}

func reasonName(r optoutv1.DiscardReason) string {
	switch r {
	case optoutv1.DiscardReason_DISCARD_REASON_UNSPECIFIED:
		return ""
	case optoutv1.DiscardReason_DISCARD_REASON_INVALID_RECEIPT:
		return "invalid_receipt"
	case optoutv1.DiscardReason_DISCARD_REASON_DENIED_AT_RECEIPT:
		return "denied_at_receipt"
	case optoutv1.DiscardReason_DISCARD_REASON_DENIED_NOW:
		return "denied_now"
	}
	return r.String()
}
