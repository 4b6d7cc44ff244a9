package main

import "gonum.org/v1/plot"

// plainGateLine is the cache chart's line of optoutd's plain Gate runs
// (a colour and glyph of its own).
const plainGateLine = "plain Gate"

// cachePoints is metric f of sys's cache summaries over the concurrencies
// of the cache workload with distribution dist.
func cachePoints(res *Results, dist, sys string, f func(*CacheSummary) Spread) rangePoints {
	return spreadPoints(res.Config.Concurrency, func(n int) (Spread, bool) {
		cs := res.Summary[Cell{Workload: wlCache, Dist: dist, Concurrency: n}.Key()]
		if cs == nil || cs.Cache[sys] == nil {
			return Spread{}, false
		}
		return f(cs.Cache[sys]), true
	})
}

// addPlainGateLines adds optoutd's plain Gate to the cache chart: its
// throughput and p99, and the ratio cache ÷ plain Gate.
func addPlainGateLines(tp, p99, rt *plot.Plot, res *Results, dist string) error {
	steps := []struct {
		p     *plot.Plot
		label string
		f     func(*CacheSummary) Spread
	}{
		{tp, sysOptoutd + " plain Gate", func(c *CacheSummary) Spread { return c.PlainOpsPerSec }},
		{p99, sysOptoutd + " plain Gate", func(c *CacheSummary) Spread { return c.PlainP99Ms }},
		{rt, "cache/plain Gate (" + sysOptoutd + ")", func(c *CacheSummary) Spread { return c.Ratio.OpsPerSec }},
	}
	for _, st := range steps {
		rp := cachePoints(res, dist, sysOptoutd, st.f)
		if err := addSweepLine(st.p, plainGateLine, dist, st.label, rp); err != nil {
			return err
		}
		if st.p == rt {
			for _, pt := range rp.XYs {
				rt.Y.Max = max(rt.Y.Max, 1.15*pt.Y)
			}
		}
	}
	return nil
}
