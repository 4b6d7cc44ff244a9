package main

import (
	"context"
	"fmt"
	"time"
)

// prepare readies an enforcement cell on ls (receipts, warm caches) and
// returns the cell's distinct enforcement clients; nil for other
// workloads. It is not part of any measurement.
func (r *runner) prepare(ctx context.Context, ls *liveSystem, cell Cell, prefix string) ([]EnforceOps, error) {
	if !isEnforcement(cell.Workload) {
		return nil, nil
	}
	eops, err := distinctEnforcers(ls.ops, cell.Concurrency)
	if err != nil {
		return nil, err
	}
	t := time.Now()
	r.prog.step(prefix, "preparing "+cell.Workload, 0, nil)
	for _, e := range eops {
		if err := e.Prepare(ctx, cell.Workload, r.keys); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", cell.Workload, err)
		}
	}
	if d := time.Since(t); d > 100*time.Millisecond {
		r.prog.logf("%s prepared %s in %.1fs (%s)", prefix, cell.Workload, d.Seconds(), prepareWhat(cell.Workload, len(r.keys), len(eops)))
	}
	return eops, nil
}

// prepareWhat says what Prepare did for wl.
func prepareWhat(wl string, keys, clients int) string {
	if wl == wlCache {
		return fmt.Sprintf("%d cache(s) warmed with %d subjects each", clients, keys)
	}
	return fmt.Sprintf("%d receipts obtained", keys)
}

// cacheCloser is a System whose caches can be closed before the round
// ends.
type cacheCloser interface{ CloseCaches() }

// closeCaches closes the caches of every live system: after the last
// cache cell, their watch streams would only cost the nodes CPU.
func closeCaches(live map[string]*liveSystem) {
	for _, ls := range live {
		if c, ok := ls.sys.(cacheCloser); ok {
			c.CloseCaches()
		}
	}
}

func cacheNote(c *CacheRun) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("  hit rate %.4f (%d hits, %d misses, %d refusals), %.1f lookups per read-index round",
		c.HitRate, c.Hits, c.Misses, c.Refusals, c.LookupsPerRound)
}
