package workload

import (
	"context"
	"errors"
	"sync"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/jepsen/history"
)

// maxReportBatch bounds one ReportProcessing call of the workload (the API
// takes up to 1000).
const maxReportBatch = 200

// reporter batches one service's reports. A batch that failed stays
// pending and is sent again (after an unknown outcome the cluster may then
// record it twice, which the verdicts do not mind); one the API refused as
// invalid is dropped, and its processings stay unreported.
type reporter struct {
	service string
	mu      sync.Mutex
	pending []pendingReport
}

type pendingReport struct {
	op int // the history index of the processing
	r  *optoutv1.ProcessingReport
}

func (r *reporter) add(op int, rep *optoutv1.ProcessingReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, pendingReport{op, rep})
}

func (r *reporter) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

func (r *reporter) run(ctx context.Context, a *actor, every time.Duration) {
	for a.pause(ctx, every) {
		r.send(a)
	}
}

// flush sends until nothing is pending or ctx ends.
func (r *reporter) flush(ctx context.Context, a *actor) {
	for r.len() > 0 && ctx.Err() == nil {
		if !r.send(a) {
			a.pause(ctx, 200*time.Millisecond)
		}
	}
}

// send reports the oldest pending batch; false when it failed.
func (r *reporter) send(a *actor) bool {
	r.mu.Lock()
	batch := append([]pendingReport(nil), r.pending[:min(len(r.pending), maxReportBatch)]...)
	r.mu.Unlock()
	if len(batch) == 0 {
		return true
	}
	reports := make([]*optoutv1.ProcessingReport, len(batch))
	op := history.Op{Type: history.Report, Key: r.service, Enf: &history.Enforce{Service: r.service}}
	for i, p := range batch {
		reports[i] = p.r
		op.Enf.Reports = append(op.Enf.Reports, history.ReportEntry{Op: p.op})
	}
	ctx, cancel := a.request()
	defer cancel()
	op.Call = a.e.rec.Now()
	resp, err := a.cl.ReportProcessing(ctx, r.service, reports)
	if err == nil && len(resp.GetVerdicts()) != len(batch) {
		err = connect.NewError(connect.CodeInternal, errVerdicts)
	}
	if err != nil {
		op.Outcome, _ = ClassifyWrite(err)
		op.Code, op.Error = codeOf(err), errText(err)
		a.record(op)
		if connect.CodeOf(err) == connect.CodeInvalidArgument {
			r.drop(len(batch))
		}
		return false
	}
	op.Outcome, op.Version = history.OK, resp.GetVersion()
	for i, v := range resp.GetVerdicts() {
		if v.GetKind() != optoutv1.ViolationKind_VIOLATION_KIND_UNSPECIFIED {
			op.Enf.Reports[i].Kind, op.Enf.Reports[i].Evidence = v.GetKind().String(), v.GetEvidence()
			op.Enf.Reports[i].ViolationID = v.GetViolationId()
		}
	}
	a.record(op)
	r.drop(len(batch))
	return true
}

func (r *reporter) drop(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = r.pending[n:]
}

var errVerdicts = errors.New("workload: the cluster answered a different number of verdicts than reports")

// ListViolations lists every service's stored violations after healing
// and records one Final op per service; it returns the services it could
// not list.
func (e *Enforce) ListViolations(ctx context.Context) []string {
	a, err := e.newActor()
	if err != nil {
		return []string{err.Error()}
	}
	defer a.cl.Close()
	var failed []string
	for _, s := range append([]string{SloppyService}, e.cfg.Services...) {
		op := history.Op{Type: history.ListViolations, Key: s, Final: true, Call: e.rec.Now(), Enf: &history.Enforce{Service: s}}
		err := e.listAll(ctx, a, s, op.Enf)
		if err != nil {
			op.Outcome, op.Code, op.Error = history.Fail, codeOf(err), errText(err)
			failed = append(failed, s+": "+errText(err))
		} else {
			op.Outcome = history.OK
		}
		a.record(op)
	}
	return failed
}

// listAll pages through service's violations, newest first, retrying a
// failed page until ctx ends.
func (e *Enforce) listAll(ctx context.Context, a *actor, service string, into *history.Enforce) error {
	var before uint64
	for {
		var resp *optoutv1.ListViolationsResponse
		var err error
		for {
			rctx, cancel := a.request()
			resp, err = a.cl.ListViolations(rctx, &optoutv1.ListViolationsRequest{Service: service, BeforeId: before, Limit: 1000})
			cancel()
			if err == nil || !a.pause(ctx, 200*time.Millisecond) {
				break
			}
		}
		if err != nil {
			return err
		}
		for _, v := range resp.GetViolations() {
			into.Stored = append(into.Stored, v.GetId())
			before = v.GetId()
		}
		if len(resp.GetViolations()) < 1000 {
			return nil
		}
	}
}
