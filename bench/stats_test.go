package main

import (
	"math"
	"testing"
	"time"
)

func msd(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x * float64(time.Millisecond))
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	ten := msd(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	four := msd(10, 20, 30, 40)
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"p50 of 1..10 is the 5th", ten, 50, 5 * time.Millisecond},
		{"p90 of 1..10 is the 9th", ten, 90, 9 * time.Millisecond},
		{"p99 of 1..10 rounds up to the 10th", ten, 99, 10 * time.Millisecond},
		{"p10 of 1..10 is the 1st", ten, 10, 1 * time.Millisecond},
		{"p0 is the minimum", ten, 0, 1 * time.Millisecond},
		{"p100 is the maximum", ten, 100, 10 * time.Millisecond},
		{"p50 of 4 is the 2nd", four, 50, 20 * time.Millisecond},
		{"p75 of 4 is the 3rd", four, 75, 30 * time.Millisecond},
		{"p76 of 4 is the 4th", four, 76, 40 * time.Millisecond},
		{"one sample", msd(7), 99.9, 7 * time.Millisecond},
		{"no samples", nil, 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.samples, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestQuantileLinear(t *testing.T) {
	v := []float64{1, 2, 3, 4}
	for _, tt := range []struct{ q, want float64 }{
		{0, 1}, {0.25, 1.75}, {0.5, 2.5}, {0.75, 3.25}, {1, 4},
	} {
		if got := quantile(v, tt.q); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := quantile([]float64{42}, 0.9); got != 42 {
		t.Errorf("quantile of one value = %v, want 42", got)
	}
	if got := quantile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("quantile of nothing = %v, want NaN", got)
	}
}

func TestSummarizeSkipsNaN(t *testing.T) {
	got := summarize([]float64{0.5, 0.4, 0.6, math.NaN(), 0.45, math.Inf(1), 0.55})
	want := Spread{N: 5, Median: 0.5, Min: 0.4, Max: 0.6, Q1: 0.45, Q3: 0.55}
	if !spreadEq(got, want) {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	even := summarize([]float64{4, 1, 3, 2})
	if want := (Spread{N: 4, Median: 2.5, Min: 1, Max: 4, Q1: 1.75, Q3: 3.25}); !spreadEq(even, want) {
		t.Errorf("summarize(even) = %+v, want %+v", even, want)
	}
	if got := summarize([]float64{math.NaN()}); got.N != 0 {
		t.Errorf("summarize(NaN) = %+v, want N=0", got)
	}
}

func spreadEq(a, b Spread) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return a.N == b.N && eq(a.Median, b.Median) && eq(a.Min, b.Min) && eq(a.Max, b.Max) && eq(a.Q1, b.Q1) && eq(a.Q3, b.Q3)
}

func TestRatiosPairwise(t *testing.T) {
	got := ratios([]float64{100, 200, 300, 400}, []float64{50, 0, 150})
	want := []float64{2, math.NaN(), 2, math.NaN()}
	if len(got) != len(want) {
		t.Fatalf("ratios = %v, want %v", got, want)
	}
	for i := range want {
		if math.IsNaN(want[i]) != math.IsNaN(got[i]) || (!math.IsNaN(want[i]) && got[i] != want[i]) {
			t.Errorf("ratios[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestSummarizeLatency(t *testing.T) {
	s := summarizeLatency(msd(5, 1, 3, 2, 4))
	want := LatencySummary{Count: 5, MeanMs: 3, P50Ms: 3, P90Ms: 5, P99Ms: 5, P999Ms: 5, MaxMs: 5}
	if s != want {
		t.Errorf("summarizeLatency = %+v, want %+v", s, want)
	}
	if s := summarizeLatency(nil); s.Count != 0 || s.P99Ms != 0 {
		t.Errorf("summarizeLatency(nil) = %+v", s)
	}
}

func TestCDFPointsEndAtMaxAndRise(t *testing.T) {
	samples := msd(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	pts := cdfPoints(samples, 20)
	if len(pts) == 0 {
		t.Fatal("no points")
	}
	if last := pts[len(pts)-1]; last != [2]float64{10, 1} {
		t.Errorf("last point = %v, want [10 1]", last)
	}
	if first := pts[0]; first != [2]float64{1, 0.1} {
		t.Errorf("first point = %v, want [1 0.1]", first)
	}
	for i := 1; i < len(pts); i++ {
		if pts[i][0] < pts[i-1][0] || pts[i][1] <= pts[i-1][1] {
			t.Errorf("points not rising at %d: %v then %v", i, pts[i-1], pts[i])
		}
	}
}

func TestRoundOrderAlternates(t *testing.T) {
	s := []string{"a", "b"}
	for round, want := range map[int]string{1: "a,b", 2: "b,a", 3: "a,b", 4: "b,a"} {
		got := roundOrder(s, round)
		if got[0]+","+got[1] != want {
			t.Errorf("round %d: %v, want %s", round, got, want)
		}
	}
	if s[0] != "a" {
		t.Error("roundOrder changed its input")
	}
}

func TestLongestGap(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	evs := []event{{end: at(50)}, {end: at(-500)}, {end: at(10)}, {end: at(900)}, {end: at(0)}, {end: at(950)}}
	// Ends after base-100ms: 0, 10, 50, 900, 950; the longest gap is 850.
	if got := longestGap(evs, at(-100)); got != 850*time.Millisecond {
		t.Errorf("longestGap = %v, want 850ms", got)
	}
	if got := longestGap(nil, base); got != 0 {
		t.Errorf("longestGap(nil) = %v", got)
	}
}

func TestFormatting(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{fmtRatio(Spread{N: 3, Median: 0.5, Min: 0.4, Max: 0.6}), "0.50× [0.40–0.60]"},
		{fmtRatio(Spread{N: 1, Median: 1.234}), "1.23×"},
		{fmtRatio(Spread{}), "n/a"},
		{fmtSpread(Spread{N: 2, Median: 12345.6, Min: 999.4, Max: 20000}), "12,346 [999–20,000]"},
		{fmtNum(1234567), "1,234,567"},
		{fmtNum(12.34), "12.3"},
		{fmtNum(1.234), "1.23"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
