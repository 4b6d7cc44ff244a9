package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
)

// The enforcement workloads (issue 10) measure what a service calls
// around processing an event, each against the nearest etcd request:
//
//	gate          Client.Gate                       etcd Get (linearizable)
//	gate-receipt  Client.Gate(WithReceipt())        etcd Get
//	cache         Cache.Gate on a warm working set  etcd Get (and plain Gate
//	              (plus a plain Gate run in the     on optoutd, in the same
//	              same cell, the ratio that counts) cell)
//	fence         Client.ShouldProcess with a       etcd Get (one read each:
//	              receipt from before the cell      a proxy)
//	report        ReportProcessing of 1 report      etcd Put
//	report-batch  ReportProcessing of --batch-size  etcd Txn of as many Puts
//
// On optoutd they ask about the pre-loaded subjects for a purpose of their
// own, enforcePurpose, for which no subject has a record: the purpose's
// default (allow) decides, so receipts are allow receipts, the fence
// answers PROCESS and every report is clean, the path of a service that
// does what it should. etcd reads (and writes next to) the pre-loaded keys.

// enforcePurpose is the purpose the enforcement workloads ask about; it
// is defined at start with the default allow.
const enforcePurpose = "bench-enforce"

// reportService names the bench in fence counts and reports.
const reportService = "bench"

// errNotAllowed is an answer other than the one the set-up guarantees (a
// deny, a discard, a violation): the measurement would be of another path.
var errNotAllowed = errors.New("bench: enforcement answer is not the allow path")

// EnforceOps are the requests of the enforcement workloads. Subjects are
// pre-loaded keys; each system maps them to its own requests.
type EnforceOps interface {
	// Prepare readies wl before a cell: the receipts that gate-receipt,
	// fence and the reports use (once per cluster), or this client's
	// cache, warmed with every subject (once per cluster). Not measured.
	Prepare(ctx context.Context, wl string, subjects []string) error
	Gate(ctx context.Context, subject string) error
	GateReceipt(ctx context.Context, subject string) error
	CachedGate(ctx context.Context, subject string) error
	Fence(ctx context.Context, subject string) error
	// Report reports the processing of one event per subject, in one
	// call (subjects are distinct).
	Report(ctx context.Context, subjects []string) error
	// CacheCounts are the counters of the cache CachedGate uses; ok is
	// false when the system has none (etcd).
	CacheCounts() (c CacheCounts, ok bool)
}

// CacheCounts are a cache's counters (client.CacheStats).
type CacheCounts struct {
	Hits, Misses, Refusals, Rounds uint64
}

func (c CacheCounts) add(o CacheCounts) CacheCounts {
	return CacheCounts{c.Hits + o.Hits, c.Misses + o.Misses, c.Refusals + o.Refusals, c.Rounds + o.Rounds}
}

// CacheRun is what the caches did during one cache run (warm-up included).
type CacheRun struct {
	Hits     uint64 `json:"hits"`
	Misses   uint64 `json:"misses"`
	Refusals uint64 `json:"refusals"`
	Rounds   uint64 `json:"read_index_rounds"`
	// HitRate: hits over all lookups (hits, misses and refusals).
	HitRate float64 `json:"hit_rate"`
	// LookupsPerRound: lookups that shared one read-index round.
	LookupsPerRound float64 `json:"lookups_per_round"`
}

// cacheRun is the difference of two counter readings.
func cacheRun(before, after CacheCounts) *CacheRun {
	d := CacheCounts{after.Hits - before.Hits, after.Misses - before.Misses, after.Refusals - before.Refusals, after.Rounds - before.Rounds}
	r := &CacheRun{Hits: d.Hits, Misses: d.Misses, Refusals: d.Refusals, Rounds: d.Rounds}
	if n := d.Hits + d.Misses + d.Refusals; n > 0 {
		r.HitRate = float64(d.Hits) / float64(n)
	}
	if d.Rounds > 0 {
		r.LookupsPerRound = float64(d.Hits+d.Misses) / float64(d.Rounds)
	}
	return r
}

// enforceOf is o's enforcement side.
func enforceOf(o Ops) (EnforceOps, error) {
	e, ok := o.(EnforceOps)
	if !ok {
		return nil, fmt.Errorf("bench: %T has no enforcement workloads", o)
	}
	return e, nil
}

// distinctEnforcers are the different EnforceOps of workers 0..conc-1.
func distinctEnforcers(ops func(int) Ops, conc int) ([]EnforceOps, error) {
	var out []EnforceOps
	seen := map[Ops]bool{}
	for w := 0; w < conc; w++ {
		o := ops(w)
		if seen[o] {
			continue
		}
		seen[o] = true
		e, err := enforceOf(o)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// sumCacheCounts adds up the caches of eops; ok if any has one.
func sumCacheCounts(eops []EnforceOps) (CacheCounts, bool) {
	var sum CacheCounts
	found := false
	for _, e := range eops {
		if c, ok := e.CacheCounts(); ok {
			sum, found = sum.add(c), true
		}
	}
	return sum, found
}

// newEnforceOp builds enforcement workload wl's request function; plain
// makes the cache workload's plain-Gate run (Gate on the same keys).
func newEnforceOp(wl string, sp opSpec, plain bool) opFunc {
	rngs := workerRNGs(sp.conc, streamOf(wl))
	key := func(w int) string { return sp.keys[sp.choose.Next(rngs[w])] }
	bufs := make([][]string, sp.conc)
	seen := make([]map[int]bool, sp.conc)
	call := func(w int, f func(EnforceOps) error) error {
		e, err := enforceOf(sp.ops(w))
		if err != nil {
			return err
		}
		return f(e)
	}
	return func(ctx context.Context, w int, _ uint64) error {
		switch {
		case wl == wlCache && plain, wl == wlGate:
			return call(w, func(e EnforceOps) error { return e.Gate(ctx, key(w)) })
		case wl == wlGateReceipt:
			return call(w, func(e EnforceOps) error { return e.GateReceipt(ctx, key(w)) })
		case wl == wlCache:
			return call(w, func(e EnforceOps) error { return e.CachedGate(ctx, key(w)) })
		case wl == wlFence:
			return call(w, func(e EnforceOps) error { return e.Fence(ctx, key(w)) })
		}
		n := 1 // wlReport
		if wl == wlReportBatch {
			n = sp.batch
		}
		if bufs[w] == nil {
			bufs[w], seen[w] = make([]string, n), map[int]bool{}
		}
		for j, k := range distinctKeys(rngs[w], sp.choose, len(sp.keys), n, seen[w]) {
			bufs[w][j] = sp.keys[k]
		}
		return call(w, func(e EnforceOps) error {
			err := e.Report(ctx, bufs[w])
			if err == nil {
				sp.writes.Add(1)
			}
			return err
		})
	}
}

// maxDrawsPerKey bounds the draws distinctKeys makes before it takes the
// keys it still needs in order (a skewed chooser on a small key space
// could otherwise draw the same hot keys for long).
const maxDrawsPerKey = 20

// distinctKeys picks n different key indices (n <= keys) with choose;
// seen is scratch space, emptied on return.
func distinctKeys(rng *rand.Rand, choose keyChooser, keys, n int, seen map[int]bool) []int {
	out := make([]int, 0, n)
	for draws := 0; len(out) < n && draws < maxDrawsPerKey*n; draws++ {
		if k := choose.Next(rng); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for k := rng.IntN(keys); len(out) < n; k = (k + 1) % keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	clear(seen)
	return out
}
