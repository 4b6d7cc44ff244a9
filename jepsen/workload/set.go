package workload

import (
	"context"
	"fmt"
	"sync"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/jepsen/checker"
	"github.com/optoutd/optoutd/jepsen/history"
)

// Set opts out a fresh subject on every add and never overwrites it, so at
// the end every acknowledged add must be on every node.
type Set struct {
	mu   sync.Mutex
	keys []string
}

func (s *Set) Name() string { return "set" }

// Invoke adds one fresh key.
func (s *Set) Invoke(_ context.Context, w *Worker, _ history.Type) history.Outcome {
	tag := w.tag()
	key := "set-" + tag
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.mu.Unlock()
	ctx, cancel := w.request()
	defer cancel()
	op := history.Op{Type: history.Add, Key: key, Tag: tag, State: "opted_out", Call: w.wl.rec.Now()}
	resp, err := w.Client.Set(ctx, &optoutv1.SetRequest{SubjectId: key, Purpose: Purpose,
		State: optoutv1.State_STATE_OPTED_OUT, Source: tag, Reason: "jepsen set"})
	if err != nil {
		op.Outcome, op.Version = ClassifyWrite(err)
		op.Code, op.Error = codeOf(err), errText(err)
	} else {
		op.Outcome, op.Version = history.OK, resp.GetVersion()
	}
	return w.record(op)
}

// Probes are keys no worker ever writes; they must be absent everywhere.
func Probes() []string {
	out := make([]string, 8)
	for i := range out {
		out[i] = fmt.Sprintf("set-probe-%d", i)
	}
	return out
}

// FinalReads reads every attempted key and the probes on every node with
// CheckBatch (one read index per batch), each node through its own
// single-endpoint client.
func (s *Set) FinalReads(ctx context.Context, eps []Endpoint) []checker.SetFinal {
	s.mu.Lock()
	keys := append(append([]string(nil), s.keys...), Probes()...)
	s.mu.Unlock()
	out := make([]checker.SetFinal, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = readSet(ctx, ep, keys)
		}()
	}
	wg.Wait()
	return out
}

func readSet(ctx context.Context, ep Endpoint, keys []string) checker.SetFinal {
	res := checker.SetFinal{Node: ep.Node, Present: map[string]bool{}}
	cl, err := client.New([]string{ep.Addr})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer cl.Close()
	for start := 0; start < len(keys); start += 1000 {
		chunk := keys[start:min(start+1000, len(keys))]
		req := &optoutv1.CheckBatchRequest{}
		for _, k := range chunk {
			req.Checks = append(req.Checks, &optoutv1.CheckRequest{SubjectId: k, Purpose: Purpose})
		}
		for {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err := cl.CheckBatch(rctx, req)
			cancel()
			if err == nil {
				for j, r := range resp.GetResults() {
					res.Present[chunk[j]] = r.GetState() == optoutv1.State_STATE_OPTED_OUT
				}
				break
			}
			if ctx.Err() != nil {
				res.Err = "final CheckBatch never succeeded: " + err.Error()
				return res
			}
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}
	return res
}
