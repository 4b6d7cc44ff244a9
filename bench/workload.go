package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// WorkloadRun is one workload on one system in one round.
type WorkloadRun struct {
	// Ops are the calls answered in the window: successes and, for cas
	// and mixed, compare-and-set conflicts (a conflict is an answer, not
	// an error; they are counted in Conflicts too).
	Ops       int64 `json:"ops"`
	Errors    int64 `json:"errors"`
	Conflicts int64 `json:"conflicts,omitempty"`
	// KeysPerOp: keys read per call (batch: --batch-size; else 1), or
	// reports per call (report-batch: --batch-size).
	KeysPerOp  int     `json:"keys_per_op"`
	KeysPerSec float64 `json:"keys_per_sec"`
	// Writes: writes acknowledged during the whole run, warm-up included
	// (the span the sync counters cover).
	Writes int64 `json:"writes,omitempty"`
	// Sync: the nodes' storage commits during the run (write workloads).
	Sync *SyncStats `json:"sync,omitempty"`
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
	// Cache: the cache workload's caches during the run, warm-up
	// included.
	Cache *CacheRun `json:"cache,omitempty"`
	// PlainGate: in a cache cell, plain Gate on the same keys, measured
	// on the same system back to back with the cache run.
	PlainGate *WorkloadRun `json:"plain_gate,omitempty"`
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
				if errors.Is(err, errConflict) {
					if measured && ctx.Err() == nil {
						conflicts.Add(1)
					}
					err = nil // answered: the key had moved on
				}
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

// preloadBatch is the keys per batched write of the preload (SetBatch's
// and the bench etcd's --max-txn-ops limit); preloadBatchWorkers send
// them (more would only queue: one batch is already one log entry).
const (
	preloadBatch        = maxBatch
	preloadBatchWorkers = 4
)

// preload writes every key once: in batches of preloadBatch keys where
// the system has a batched write, and one key at a time with conc workers
// where it has not (an optoutd-base from before SetBatch), retrying each
// write until it succeeds (the cluster may still be settling). The time
// limit grows with the keys: 10M keys take minutes.
func preload(ctx context.Context, ops func(int) Ops, keys []string, conc int, opTimeout time.Duration, counter *atomic.Int64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute+time.Duration(len(keys))*100*time.Microsecond)
	defer cancel()
	var next atomic.Int64
	var noBatch atomic.Bool
	batched := func(o Ops) error {
		for !noBatch.Load() {
			k := next.Add(preloadBatch) - preloadBatch
			if k >= int64(len(keys)) {
				return nil
			}
			chunk := keys[k:min(k+preloadBatch, int64(len(keys)))]
			err := retry(ctx, func(c context.Context) error {
				c, cancel := context.WithTimeout(c, opTimeout)
				defer cancel()
				err := o.SetBatch(c, chunk, uint64(k))
				if errors.Is(err, errNoBatch) {
					noBatch.Store(true)
					return nil
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("preload %s..: %w", chunk[0], err)
			}
			if noBatch.Load() {
				// Not written: give the chunk back to the single writes.
				return &unwritten{from: k, to: k + int64(len(chunk))}
			}
			counter.Add(int64(len(chunk)))
		}
		return nil
	}
	errs := workers(min(conc, preloadBatchWorkers), ops, batched)
	var redo []*unwritten
	for _, err := range errs {
		var u *unwritten
		switch {
		case errors.As(err, &u):
			redo = append(redo, u)
		case err != nil:
			return err
		}
	}
	if !noBatch.Load() {
		return nil
	}
	// One key at a time: the chunks handed back, then the rest.
	var todo []string
	for _, u := range redo {
		todo = append(todo, keys[u.from:min(u.to, int64(len(keys)))]...)
	}
	if rest := next.Load(); rest < int64(len(keys)) {
		todo = append(todo, keys[rest:]...)
	}
	var i atomic.Int64
	single := func(o Ops) error {
		for {
			n := i.Add(1) - 1
			if n >= int64(len(todo)) {
				return nil
			}
			err := retry(ctx, func(c context.Context) error {
				c, cancel := context.WithTimeout(c, opTimeout)
				defer cancel()
				return o.Set(c, todo[n], uint64(n))
			})
			if err != nil {
				return fmt.Errorf("preload %s: %w", todo[n], err)
			}
			counter.Add(1)
		}
	}
	for _, err := range workers(conc, ops, single) {
		if err != nil {
			return err
		}
	}
	return nil
}

// unwritten is a preload chunk a batch could not write.
type unwritten struct{ from, to int64 }

func (u *unwritten) Error() string { return fmt.Sprintf("keys %d..%d not written", u.from, u.to) }

// workers runs fn on n workers, each with its own Ops, and returns their
// errors.
func workers(n int, ops func(int) Ops, fn func(Ops) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = fn(ops(w))
		}()
	}
	wg.Wait()
	return errs
}

// opSpec is what every workload's requests need.
type opSpec struct {
	ops    func(int) Ops
	keys   []string
	choose keyChooser
	conc   int
	batch  int
	// writes counts acknowledged writes (sets and compare-and-sets,
	// conflicts included: they go through the log too).
	writes *atomic.Int64
}

// mixedCASPercent: the share of compare-and-sets in the mixed workload.
const mixedCASPercent = 5

// newOp builds workload wl's request function.
func newOp(wl string, sp opSpec) opFunc {
	if isEnforcement(wl) {
		return newEnforceOp(wl, sp, false)
	}
	rngs := workerRNGs(sp.conc, streamOf(wl))
	key := func(w int) string { return sp.keys[sp.choose.Next(rngs[w])] }
	cas := func(ctx context.Context, w int, i uint64) error {
		err := casOnce(ctx, sp.ops(w), key(w), i)
		if err == nil || errors.Is(err, errConflict) {
			sp.writes.Add(1)
		}
		return err
	}
	switch wl {
	case wlBatch:
		bufs := make([][]string, sp.conc)
		return func(ctx context.Context, w int, _ uint64) error {
			if bufs[w] == nil {
				bufs[w] = make([]string, sp.batch)
			}
			for j := range bufs[w] {
				bufs[w][j] = key(w)
			}
			return sp.ops(w).CheckBatch(ctx, bufs[w])
		}
	case wlImport:
		// Distinct keys per call: consecutive ones from a shared cursor
		// (the key distribution does not apply).
		var cursor atomic.Uint64
		bufs := make([][]string, sp.conc)
		return func(ctx context.Context, w int, i uint64) error {
			if bufs[w] == nil {
				bufs[w] = make([]string, sp.batch)
			}
			start := cursor.Add(uint64(sp.batch)) - uint64(sp.batch)
			for j := range bufs[w] {
				bufs[w][j] = sp.keys[(start+uint64(j))%uint64(len(sp.keys))]
			}
			err := sp.ops(w).SetBatch(ctx, bufs[w], i)
			if err == nil {
				sp.writes.Add(int64(sp.batch))
			}
			return err
		}
	case wlSet:
		return func(ctx context.Context, w int, i uint64) error {
			err := sp.ops(w).Set(ctx, key(w), i)
			if err == nil {
				sp.writes.Add(1)
			}
			return err
		}
	case wlCAS:
		return cas
	case wlMixed:
		return func(ctx context.Context, w int, i uint64) error {
			if rngs[w].IntN(100) < mixedCASPercent {
				return cas(ctx, w, i)
			}
			return sp.ops(w).Check(ctx, key(w))
		}
	default: // wlCheck
		return func(ctx context.Context, w int, _ uint64) error { return sp.ops(w).Check(ctx, key(w)) }
	}
}

// casOnce reads the key's version, then writes it only if it still has
// that version: errConflict when another client wrote in between.
func casOnce(ctx context.Context, o Ops, key string, seq uint64) error {
	v, err := o.Version(ctx, key)
	if err != nil {
		return err
	}
	_, err = o.CAS(ctx, key, v, seq)
	return err
}

// streamOf gives each workload its own random streams.
func streamOf(wl string) uint64 {
	return uint64(slices.Index(allWorkloads, wl) + 10)
}

func workerRNGs(conc int, stream uint64) []*rand.Rand {
	out := make([]*rand.Rand, conc)
	for w := range out {
		out[w] = rand.New(rand.NewPCG(uint64(w), stream))
	}
	return out
}
