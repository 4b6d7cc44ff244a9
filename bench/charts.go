package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var sysColor = map[string]color.Color{
	sysOptoutd:     color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	sysEtcd:        color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	sysOptoutdBase: color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	plainGateLine:  color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

var sysGlyph = map[string]draw.GlyphDrawer{
	sysOptoutd:     draw.CircleGlyph{},
	sysEtcd:        draw.TriangleGlyph{},
	sysOptoutdBase: draw.SquareGlyph{},
	plainGateLine:  draw.BoxGlyph{},
}

const chartW, chartH = 6 * vg.Inch, 3.6 * vg.Inch

// writeCharts draws the PNGs into dir and returns their file names: one
// per workload (throughput, p99 and the ratio against concurrency), and
// the failover samples.
func writeCharts(dir string, res *Results) ([]string, error) {
	var names []string
	for _, wl := range res.Config.throughputOf() {
		name := "bench-sweep-" + wl + ".png"
		if err := sweepChart(filepath.Join(dir, name), res, wl); err != nil {
			return names, fmt.Errorf("chart %s: %w", name, err)
		}
		names = append(names, name)
	}
	if res.Failover != nil {
		p, err := failoverChart(res)
		if err != nil {
			return names, err
		}
		if err := p.Save(chartW, chartH, filepath.Join(dir, "bench-failover.png")); err != nil {
			return names, fmt.Errorf("chart bench-failover.png: %w", err)
		}
		names = append(names, "bench-failover.png")
	}
	return names, nil
}

// rangePoints are medians with their min–max, as error bars.
type rangePoints struct {
	plotter.XYs
	lo, hi []float64 // distances below and above Y
}

func (r rangePoints) YError(i int) (float64, float64) { return r.lo[i], r.hi[i] }

// sweepPoints is one line of a sweep chart: metric f of system sys over
// the concurrencies of workload wl with distribution dist, median and
// range across rounds. Cells with no value are left out.
func sweepPoints(res *Results, wl, dist, sys string, f func(*CellSummary, string) Spread) rangePoints {
	return spreadPoints(res.Config.Concurrency, func(n int) (Spread, bool) {
		cs := res.Summary[Cell{Workload: wl, Dist: dist, Concurrency: n}.Key()]
		if cs == nil {
			return Spread{}, false
		}
		return f(cs, sys), true
	})
}

// spreadPoints is the median and min–max of get(n) for each concurrency
// n that has a positive value.
func spreadPoints(conc []int, get func(n int) (Spread, bool)) rangePoints {
	var rp rangePoints
	for _, n := range conc {
		s, ok := get(n)
		if !ok || s.N == 0 || math.IsNaN(s.Median) || s.Median <= 0 {
			continue
		}
		rp.XYs = append(rp.XYs, plotter.XY{X: float64(n), Y: s.Median})
		rp.lo, rp.hi = append(rp.lo, s.Median-s.Min), append(rp.hi, s.Max-s.Median)
	}
	return rp
}

// Chart metrics; throughput is keys/s for batch (the same as calls/s
// otherwise).
var (
	chartThroughput = func(cs *CellSummary, sys string) Spread { return cs.KeysPerSec[sys] }
	chartP99        = func(cs *CellSummary, sys string) Spread { return cs.P99Ms[sys] }
	chartRatio      = func(cs *CellSummary, _ string) Spread { return cs.Ratio.OpsPerSec }
)

// sweepChart draws three panels against concurrency, for both systems and
// each distribution: throughput, p99 latency, and the throughput ratio.
func sweepChart(path string, res *Results, wl string) error {
	a, b := res.sides()
	unit := unitOf(wl)
	tp := sweepPanel(fmt.Sprintf("%s: throughput (%s) against clients", wl, unit), unit, res.Config.Concurrency)
	tp.Y.Min = 0
	tp.Y.Tick.Marker = intTicks{}
	p99 := sweepPanel(wl+": p99 latency", "p99 ms (log scale)", res.Config.Concurrency)
	p99.Y.Scale, p99.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	rt := sweepPanel(fmt.Sprintf("%s: throughput ratio %s / %s (median, min–max over rounds)", wl, a, b), "ratio", res.Config.Concurrency)
	rt.Y.Min = 0
	rt.Y.Tick.Marker = ratioTicks{}
	one := plotter.NewFunction(func(float64) float64 { return 1 })
	one.Color, one.Dashes = color.Gray{Y: 0x80}, []vg.Length{vg.Points(4), vg.Points(4)}
	rt.Add(one)
	for _, dist := range res.Config.Dists {
		for _, sys := range res.Config.Systems {
			label := sys
			if wl == wlCache && sys != sysEtcd {
				label += " cache"
			}
			if err := addSweepLine(tp, sys, dist, label, sweepPoints(res, wl, dist, sys, chartThroughput)); err != nil {
				return err
			}
			if err := addSweepLine(p99, sys, dist, label, sweepPoints(res, wl, dist, sys, chartP99)); err != nil {
				return err
			}
		}
		if len(res.Config.Systems) == 2 {
			rp := sweepPoints(res, wl, dist, a, chartRatio)
			if err := addSweepLine(rt, a, dist, a+"/"+b, rp); err != nil {
				return err
			}
			for _, pt := range rp.XYs {
				rt.Y.Max = max(rt.Y.Max, 1.15*pt.Y)
			}
		}
		if wl == wlCache {
			if err := addPlainGateLines(tp, p99, rt, res, dist); err != nil {
				return err
			}
		}
	}
	rt.Y.Max = max(rt.Y.Max, 1.2)
	img := vgimg.New(chartW, 3*chartH)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 3, Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadY: vg.Points(12), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{{tp}, {p99}, {rt}}, tiles, dc)
	tp.Draw(canvases[0][0])
	p99.Draw(canvases[1][0])
	rt.Draw(canvases[2][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// sweepPanel is an empty panel with a log-2 concurrency axis.
func sweepPanel(title, ylabel string, conc []int) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = "clients (log scale)", ylabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = concTicks(conc)
	p.X.Min, p.X.Max = float64(conc[0])/1.5, float64(conc[len(conc)-1])*1.5
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	return p
}

// addSweepLine draws one system's line for one distribution: solid for
// uniform keys, dashed for Zipf, with min–max bars.
func addSweepLine(p *plot.Plot, sys, dist, label string, rp rangePoints) error {
	if len(rp.XYs) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(rp.XYs)
	if err != nil {
		return err
	}
	l.Color, l.Width = sysColor[sys], vg.Points(1.5)
	if dist == distZipf {
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	s.Color, s.Shape, s.Radius = sysColor[sys], sysGlyph[sys], vg.Points(3)
	eb, err := plotter.NewYErrorBars(rp)
	if err != nil {
		return err
	}
	eb.Color = sysColor[sys]
	p.Add(l, s, eb)
	p.Legend.Add(label+" "+dist, l, s)
	return nil
}

// concTicks labels exactly the swept concurrencies.
type concTicks []int

func (c concTicks) Ticks(_, _ float64) []plot.Tick {
	t := make([]plot.Tick, len(c))
	for i, n := range c {
		t[i] = plot.Tick{Value: float64(n), Label: strconv.Itoa(n)}
	}
	return t
}

// intTicks labels the default ticks without decimals.
type intTicks struct{}

func (intTicks) Ticks(lo, hi float64) []plot.Tick {
	t := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range t {
		if t[i].Label != "" {
			t[i].Label = fmt.Sprintf("%.0f", t[i].Value)
		}
	}
	return t
}

// ratioTicks labels every 0.5 (every 1 above 4), so 1 always has a label.
type ratioTicks struct{}

func (ratioTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 0.5
	if hi > 4 {
		step = 1
	}
	minor := step / 5
	var t []plot.Tick
	for i := 0; float64(i)*minor <= hi; i++ {
		v := float64(i) * minor
		switch {
		case v < lo:
		case i%5 == 0:
			t = append(t, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 1, 64)})
		default:
			t = append(t, plot.Tick{Value: v})
		}
	}
	return t
}

// failoverChart: every sample's write and read unavailability.
func failoverChart(res *Results) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "failover: unavailability after kill -9 of the leader"
	p.Y.Label.Text = "ms until the first success sent after the kill"
	p.Y.Min = 0
	p.Legend.Top = true
	var labels []string
	for i, sys := range res.Config.Systems {
		for j, kind := range []string{"writes", "reads"} {
			x := float64(2*i + j)
			labels = append(labels, sys+" "+kind)
			var xys plotter.XYs
			vals := failoverValues(res.Rounds, sys, func(s FailoverSample) float64 {
				if kind == "writes" {
					return s.WriteUnavailableMs
				}
				return s.ReadUnavailableMs
			})
			for k, v := range vals {
				off := 0.0
				if len(vals) > 1 {
					off = 0.3 * (float64(k)/float64(len(vals)-1) - 0.5)
				}
				xys = append(xys, plotter.XY{X: x + off, Y: v})
			}
			if len(xys) == 0 {
				continue
			}
			s, err := plotter.NewScatter(xys)
			if err != nil {
				return nil, err
			}
			s.GlyphStyle.Color, s.GlyphStyle.Shape, s.GlyphStyle.Radius = sysColor[sys], sysGlyph[sys], vg.Points(3)
			p.Add(s)
		}
	}
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.5, float64(len(labels))-0.5
	p.Add(plotter.NewGrid())
	return p, nil
}
