package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted samples
// by the nearest-rank method: the smallest sample such that at least p% of
// the samples are <= it. It is always one of the samples, as in HDR
// histograms. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// quantile returns the q-th quantile (0 <= q <= 1) of sorted values by
// linear interpolation between closest ranks (R's type 7, numpy's default).
// It is used for summaries across rounds, where there are few values.
func quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n == 1 {
		return sorted[0]
	}
	h := q * float64(n-1)
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return sorted[n-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// Spread summarises a handful of values (one per round or per sample).
type Spread struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Q1     float64 `json:"q1"`
	Q3     float64 `json:"q3"`
}

// summarize ignores NaN and infinite values (a round where a ratio could
// not be formed).
func summarize(vals []float64) Spread {
	var v []float64
	for _, x := range vals {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Spread{} // N == 0: nothing to summarise
	}
	slices.Sort(v)
	return Spread{
		N:      len(v),
		Median: quantile(v, 0.5),
		Min:    v[0],
		Max:    v[len(v)-1],
		Q1:     quantile(v, 0.25),
		Q3:     quantile(v, 0.75),
	}
}

// ratios divides a[i] by b[i] pairwise (same round); a zero or missing
// denominator gives NaN for that round.
func ratios(a, b []float64) []float64 {
	out := make([]float64, 0, len(a))
	for i := range a {
		if i >= len(b) || b[i] == 0 {
			out = append(out, math.NaN())
			continue
		}
		out = append(out, a[i]/b[i])
	}
	return out
}

// LatencySummary is the distribution of one workload run.
type LatencySummary struct {
	Count  int     `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarizeLatency sorts samples in place and summarises them.
func summarizeLatency(samples []time.Duration) LatencySummary {
	slices.Sort(samples)
	s := LatencySummary{Count: len(samples)}
	if len(samples) == 0 {
		return s
	}
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	s.MeanMs = ms(sum / time.Duration(len(samples)))
	s.P50Ms = ms(percentile(samples, 50))
	s.P90Ms = ms(percentile(samples, 90))
	s.P99Ms = ms(percentile(samples, 99))
	s.P999Ms = ms(percentile(samples, 99.9))
	s.MaxMs = ms(samples[len(samples)-1])
	return s
}

// cdfPoints returns up to n (latency, fraction) points of the empirical CDF
// of sorted samples, denser in the tail, for charts and results.json.
func cdfPoints(sorted []time.Duration, n int) [][2]float64 {
	if len(sorted) == 0 || n < 2 {
		return nil
	}
	var out [][2]float64
	last := -1
	for i := 0; i < n; i++ {
		// 1 - 10^(-4 i/(n-1)) spreads points from 0 to 0.9999.
		f := 1 - math.Pow(10, -4*float64(i)/float64(n-1))
		idx := min(int(f*float64(len(sorted))), len(sorted)-1)
		if idx == last {
			continue
		}
		last = idx
		out = append(out, [2]float64{ms(sorted[idx]), float64(idx+1) / float64(len(sorted))})
	}
	if last != len(sorted)-1 {
		out = append(out, [2]float64{ms(sorted[len(sorted)-1]), 1})
	}
	return out
}
