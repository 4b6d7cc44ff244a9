package main

import "math"

// CacheSummary is one system's cache cell across rounds: the caches'
// counters and the cache against plain Gate on the same keys in the same
// cell.
type CacheSummary struct {
	HitRate         Spread `json:"hit_rate"`
	LookupsPerRound Spread `json:"lookups_per_round"`
	// The plain Gate runs.
	PlainOpsPerSec  Spread `json:"plain_ops_per_sec"`
	PlainP50Ms      Spread `json:"plain_p50_ms"`
	PlainP99Ms      Spread `json:"plain_p99_ms"`
	PlainCPUPerOpUs Spread `json:"plain_node_cpu_per_op_us"`
	// Ratio: cache / plain Gate, formed per round.
	Ratio    RatioSummary `json:"ratio"`
	PerRound []RoundRatio `json:"per_round"`
}

// plainOf applies f to a run's plain-Gate run (NaN without one).
func plainOf(f func(*WorkloadRun) float64) func(*WorkloadRun) float64 {
	return func(r *WorkloadRun) float64 {
		if r.PlainGate == nil || r.PlainGate.Ops == 0 {
			return math.NaN()
		}
		return f(r.PlainGate)
	}
}

// cacheOf applies f to a run's cache counters (NaN without them).
func cacheOf(f func(*CacheRun) float64) func(*WorkloadRun) float64 {
	return func(r *WorkloadRun) float64 {
		if r.Cache == nil {
			return math.NaN()
		}
		return f(r.Cache)
	}
}

// summarizeCache summarises the cache cell key for every system that ran
// it with a cache; nil if none did.
func summarizeCache(rounds []*RoundResult, key string, systems []string) map[string]*CacheSummary {
	out := map[string]*CacheSummary{}
	for _, s := range systems {
		hit := perRound(rounds, key, s, cacheOf(func(c *CacheRun) float64 { return c.HitRate }))
		plainOps := perRound(rounds, key, s, plainOf(opsf))
		if summarize(hit).N == 0 && summarize(plainOps).N == 0 {
			continue
		}
		ratio := func(f func(*WorkloadRun) float64) []float64 {
			return ratios(perRound(rounds, key, s, f), perRound(rounds, key, s, plainOf(f)))
		}
		ro, r50, r99, r999, rc := ratio(opsf), ratio(p50f), ratio(p99f), ratio(p999f), ratio(cpuf)
		cs := &CacheSummary{
			HitRate:         summarize(hit),
			LookupsPerRound: summarize(perRound(rounds, key, s, cacheOf(func(c *CacheRun) float64 { return c.LookupsPerRound }))),
			PlainOpsPerSec:  summarize(plainOps),
			PlainP50Ms:      summarize(perRound(rounds, key, s, plainOf(p50f))),
			PlainP99Ms:      summarize(perRound(rounds, key, s, plainOf(p99f))),
			PlainCPUPerOpUs: summarize(perRound(rounds, key, s, plainOf(cpuf))),
			Ratio:           RatioSummary{OpsPerSec: summarize(ro), P50: summarize(r50), P99: summarize(r99), P999: summarize(r999), CPUPerOp: summarize(rc)},
		}
		for i, rr := range rounds {
			cs.PerRound = append(cs.PerRound, RoundRatio{Round: rr.Round, OpsPerSec: finite(ro[i]), P50: finite(r50[i]), P99: finite(r99[i]),
				P999: finite(r999[i]), CPUPerOp: finite(rc[i])})
		}
		out[s] = cs
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
