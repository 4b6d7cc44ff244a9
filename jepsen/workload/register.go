package workload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/jepsen/history"
)

// Register reads and writes a small set of keys, so that operations
// contend. Every write puts a unique tag in `source`, so a Get tells which
// write it saw; Check tells only state and version.
type Register struct {
	Keys int
}

func (r *Register) Name() string { return "register" }

// KeyName is the subject of register key i.
func KeyName(i int) string { return fmt.Sprintf("reg-%d", i) }

// KeyNames lists every register key.
func (r *Register) KeyNames() []string {
	out := make([]string, r.Keys)
	for i := range out {
		out[i] = KeyName(i)
	}
	return out
}

// Invoke performs one register operation.
func (r *Register) Invoke(_ context.Context, w *Worker, typ history.Type) history.Outcome {
	key := KeyName(w.rng.IntN(r.Keys))
	switch typ {
	case history.Get:
		return w.record(w.get(key))
	case history.Check:
		return w.record(w.check(key))
	default:
		return w.record(w.set(key, typ))
	}
}

func (w *Worker) get(key string) history.Op {
	ctx, cancel := w.request()
	defer cancel()
	op := history.Op{Type: history.Get, Key: key, Call: w.wl.rec.Now()}
	resp, err := w.Client.Get(ctx, &optoutv1.GetRequest{SubjectId: key, Purpose: Purpose})
	fillGet(&op, resp, err)
	if op.Outcome == history.OK || op.Outcome == history.NotFound {
		w.known[key] = op.Version
	}
	return op
}

func fillGet(op *history.Op, resp *optoutv1.GetResponse, err error) {
	switch {
	case err == nil:
		rec := resp.GetRecord()
		op.Outcome, op.Tag, op.State, op.Version = history.OK, rec.GetSource(), stateName(rec.GetState()), rec.GetVersion()
	case connect.CodeOf(err) == connect.CodeNotFound:
		op.Outcome = history.NotFound
	default:
		op.Outcome, op.Code, op.Error = history.Fail, codeOf(err), errText(err)
	}
}

func (w *Worker) check(key string) history.Op {
	ctx, cancel := w.request()
	defer cancel()
	op := history.Op{Type: history.Check, Key: key, Call: w.wl.rec.Now()}
	resp, err := w.Client.Check(ctx, &optoutv1.CheckRequest{SubjectId: key, Purpose: Purpose})
	if err != nil {
		op.Outcome, op.Code, op.Error = history.Fail, codeOf(err), errText(err)
		return op
	}
	op.Outcome, op.State, op.Version = history.OK, stateName(resp.GetState()), resp.GetVersion()
	w.known[key] = op.Version
	return op
}

func (w *Worker) set(key string, typ history.Type) history.Op {
	ctx, cancel := w.request()
	defer cancel()
	state := optoutv1.State_STATE_OPTED_OUT
	if w.rng.IntN(2) == 0 {
		state = optoutv1.State_STATE_OPTED_IN
	}
	req := &optoutv1.SetRequest{SubjectId: key, Purpose: Purpose, State: state, Source: w.tag(), Reason: "jepsen register"}
	op := history.Op{Type: typ, Key: key, Tag: req.Source, State: stateName(state)}
	if typ == history.CAS {
		exp := w.known[key]
		req.ExpectedVersion, op.Expected = &exp, &exp
	}
	op.Call = w.wl.rec.Now()
	resp, err := w.Client.Set(ctx, req)
	if err != nil {
		op.Outcome, op.Version = ClassifyWrite(err)
		op.Code, op.Error = codeOf(err), errText(err)
		if op.Outcome == history.Mismatch {
			w.known[key] = op.Version
		}
		return op
	}
	op.Outcome, op.Version = history.OK, resp.GetVersion()
	w.known[key] = op.Version
	return op
}

// FinalReads reads every register key on every node, each node through its
// own single-endpoint client, and records the reads (Final) in the
// history. A read that fails is retried until ctx ends: the cluster is
// healed, so every node must answer. It returns the nodes that could not.
func (r *Register) FinalReads(ctx context.Context, rec *history.Recorder, eps []Endpoint, worker0 int) []string {
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.finalNode(ctx, rec, ep, worker0+i); err != nil {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("%s: %v", ep.Node, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

func (r *Register) finalNode(ctx context.Context, rec *history.Recorder, ep Endpoint, worker int) error {
	cl, err := client.New([]string{ep.Addr})
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, key := range r.KeyNames() {
		for {
			op := history.Op{Type: history.Get, Key: key, Worker: worker, Process: worker, Node: ep.Node, Final: true, Call: rec.Now()}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err := cl.Get(rctx, &optoutv1.GetRequest{SubjectId: key, Purpose: Purpose})
			cancel()
			fillGet(&op, resp, err)
			op.Return = rec.Now()
			rec.Add(op)
			if op.Outcome != history.Fail {
				break
			}
			if ctx.Err() != nil {
				return errors.Join(errors.New("final read of "+key+" never succeeded"), err)
			}
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}
	return nil
}
