package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// WorkloadRun is one workload on one system in one round.
type WorkloadRun struct {
	Ops       int64 `json:"ops"`
	Errors    int64 `json:"errors"`
	Conflicts int64 `json:"conflicts,omitempty"`
	// Late: successes sent in the window that ended after it; in the
	// latencies, not in ops/s.
	Late       int64          `json:"late"`
	Seconds    float64        `json:"seconds"`
	OpsPerSec  float64        `json:"ops_per_sec"`
	Latency    LatencySummary `json:"latency"`
	FirstError string         `json:"first_error,omitempty"`
	CDF        [][2]float64   `json:"cdf_ms"` // (latency ms, fraction) points
	// CPU covers the whole run, warm-up included.
	CPU CPUUsage `json:"cpu"`

	samples []time.Duration // sorted; kept for the merged CDF chart
}

// opFunc is one request of worker w; i counts the worker's requests.
type opFunc func(ctx context.Context, w int, i uint64) error

// errorPause keeps a failing worker from spinning on the 2 shared cores.
const errorPause = 10 * time.Millisecond

// closedLoop runs conc workers that each send op back to back. Requests
// that start after warmup and end within the following dur are measured;
// successes give ops/s and latencies. counter counts successes for the
// progress line.
func closedLoop(ctx context.Context, conc int, warmup, dur, opTimeout time.Duration, counter *atomic.Int64, op opFunc) *WorkloadRun {
	start := time.Now()
	from, to := start.Add(warmup), start.Add(warmup+dur)
	lats := make([][]time.Duration, conc)
	var errs, conflicts, late atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var i uint64
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(to) {
					return
				}
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				err := op(octx, w, i)
				cancel()
				t1 := time.Now()
				i++
				// Requests sent in the window count; their latency is kept
				// even if they end after it (a stall shows in the tail),
				// but only those that end inside it count for ops/s.
				measured := !t0.Before(from)
				switch {
				case err == nil && measured:
					lats[w] = append(lats[w], t1.Sub(t0))
					if t1.After(to) {
						late.Add(1)
					}
					counter.Add(1)
				case err == nil:
					counter.Add(1) // warm-up: shown in progress only
				case err != nil:
					if measured && ctx.Err() == nil {
						if errors.Is(err, errConflict) {
							conflicts.Add(1)
						}
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					sleepCtx(ctx, errorPause)
				}
			}
		}(w)
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	r := &WorkloadRun{Ops: int64(len(all)) - late.Load(), Late: late.Load(), Errors: errs.Load(), Conflicts: conflicts.Load(), Seconds: dur.Seconds()}
	r.OpsPerSec = float64(r.Ops) / dur.Seconds()
	r.Latency = summarizeLatency(all) // sorts
	r.CDF = cdfPoints(all, 60)
	r.samples = all
	if s, ok := firstErr.Load().(string); ok {
		r.FirstError = s
	}
	return r
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// subjects are the pre-loaded keys, formatted once.
func subjects(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("s%07d", i)
	}
	return out
}

// preload writes every key once with conc workers, retrying each key
// until it succeeds (the cluster may still be settling).
func preload(ctx context.Context, ops func(int) Ops, keys []string, conc int, opTimeout time.Duration, counter *atomic.Int64) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var next atomic.Int64
	errc := make(chan error, conc)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			o := ops(w)
			for {
				k := next.Add(1) - 1
				if k >= int64(len(keys)) {
					return
				}
				err := retry(ctx, func(c context.Context) error {
					c, cancel := context.WithTimeout(c, opTimeout)
					defer cancel()
					return o.Write(c, keys[k], uint64(k))
				})
				if err != nil {
					errc <- fmt.Errorf("preload %s: %w", keys[k], err)
					cancel()
					return
				}
				counter.Add(1)
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// readOp: a linearizable read of a uniformly chosen pre-loaded key.
func readOp(ops func(int) Ops, keys []string, conc int) opFunc {
	rngs := workerRNGs(conc, 1)
	return func(ctx context.Context, w int, _ uint64) error {
		return ops(w).Read(ctx, keys[rngs[w].IntN(len(keys))])
	}
}

// writeOp: a blind write of a uniformly chosen pre-loaded key.
func writeOp(ops func(int) Ops, keys []string, conc int) opFunc {
	rngs := workerRNGs(conc, 2)
	return func(ctx context.Context, w int, i uint64) error {
		return ops(w).Write(ctx, keys[rngs[w].IntN(len(keys))], i)
	}
}

// casKeysPerWorker: each worker owns this many keys, so compare-and-set
// conflicts come only from failures, not from contention.
const casKeysPerWorker = 8

// casOp: worker w cycles over its own keys, each time setting the version
// it last saw. The keys are new, so the first write expects version 0 (the
// key must not exist). After an error the version is read again.
func casOp(ops func(int) Ops, conc int) opFunc {
	type casKey struct {
		name    string
		version uint64
		known   bool
	}
	keys := make([][]casKey, conc)
	for w := range keys {
		for j := 0; j < casKeysPerWorker; j++ {
			keys[w] = append(keys[w], casKey{name: fmt.Sprintf("cas-w%04d-k%02d", w, j), known: true})
		}
	}
	return func(ctx context.Context, w int, i uint64) error {
		k := &keys[w][i%casKeysPerWorker]
		o := ops(w)
		if !k.known {
			v, err := o.Version(ctx, k.name)
			if err != nil {
				return err
			}
			k.version, k.known = v, true
		}
		v, err := o.CAS(ctx, k.name, k.version, i)
		if err != nil {
			k.known = false
			return err
		}
		k.version = v
		return nil
	}
}

func workerRNGs(conc int, stream uint64) []*rand.Rand {
	out := make([]*rand.Rand, conc)
	for w := range out {
		out[w] = rand.New(rand.NewPCG(uint64(w), stream))
	}
	return out
}
