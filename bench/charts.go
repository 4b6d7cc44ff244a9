package main

import (
	"fmt"
	"image/color"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var sysColor = map[string]color.Color{
	sysOptoutd:     color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	sysEtcd:        color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	sysOptoutdBase: color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

var sysGlyph = map[string]draw.GlyphDrawer{
	sysOptoutd:     draw.CircleGlyph{},
	sysEtcd:        draw.TriangleGlyph{},
	sysOptoutdBase: draw.SquareGlyph{},
}

const chartW, chartH = 6 * vg.Inch, 3.6 * vg.Inch

// writeCharts draws the PNGs into dir and returns their file names.
func writeCharts(dir string, res *Results) ([]string, error) {
	var names []string
	save := func(p *plot.Plot, name string) error {
		w := chartW
		if name == "bench-ratios.png" {
			w = ratioChartWidth(res)
		}
		if err := p.Save(w, chartH, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("chart %s: %w", name, err)
		}
		names = append(names, name)
		return nil
	}
	for _, wl := range []string{wlReads, wlWrites, wlCAS} {
		if res.Summary[wl] == nil {
			continue
		}
		p, err := throughputChart(res, wl)
		if err != nil {
			return names, err
		}
		if err := save(p, "bench-throughput-"+wl+".png"); err != nil {
			return names, err
		}
		if res.LatencyCDF[wl] == nil {
			continue
		}
		if p, err = cdfChart(res, wl); err != nil {
			return names, err
		}
		if err := save(p, "bench-latency-cdf-"+wl+".png"); err != nil {
			return names, err
		}
	}
	if len(res.Summary) > 0 && len(res.Config.Systems) == 2 {
		p, err := ratioChart(res)
		if err != nil {
			return names, err
		}
		if err := save(p, "bench-ratios.png"); err != nil {
			return names, err
		}
	}
	if res.Failover != nil {
		p, err := failoverChart(res)
		if err != nil {
			return names, err
		}
		if err := save(p, "bench-failover.png"); err != nil {
			return names, err
		}
	}
	return names, nil
}

func addSeries(p *plot.Plot, sys string, xys plotter.XYs, line bool) error {
	if len(xys) == 0 {
		return nil
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	s.GlyphStyle.Color, s.GlyphStyle.Shape, s.GlyphStyle.Radius = sysColor[sys], sysGlyph[sys], vg.Points(3)
	p.Add(s)
	if line {
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		l.LineStyle.Color, l.LineStyle.Width = sysColor[sys], vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(sys, l, s)
	} else {
		p.Legend.Add(sys, s)
	}
	return nil
}

// throughputChart: ops/s per round, both systems.
func throughputChart(res *Results, wl string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: throughput per round (%d clients)", wl, res.Config.Concurrency)
	p.X.Label.Text, p.Y.Label.Text = "round", "ops/s"
	p.Y.Min = 0
	p.Y.Tick.Marker = intTicks{}
	p.Legend.Top = false // bottom right: the axis starts at 0, the lines sit higher
	for _, sys := range res.Config.Systems {
		var xys plotter.XYs
		for _, rr := range res.Rounds {
			if r := runOf(rr, sys, wl); r != nil && r.Ops > 0 {
				xys = append(xys, plotter.XY{X: float64(rr.Round), Y: r.OpsPerSec})
			}
		}
		if err := addSeries(p, sys, xys, true); err != nil {
			return nil, err
		}
	}
	p.X.Tick.Marker = roundTicks(len(res.Rounds))
	p.Add(plotter.NewGrid())
	return p, nil
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

type roundTicks int

func (n roundTicks) Ticks(_, _ float64) []plot.Tick {
	var t []plot.Tick
	for i := 1; i <= int(n); i++ {
		t = append(t, plot.Tick{Value: float64(i), Label: fmt.Sprint(i)})
	}
	return t
}

// cdfChart: latency CDF of every round merged, log latency axis.
func cdfChart(res *Results, wl string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: latency CDF, all rounds", wl)
	p.X.Label.Text, p.Y.Label.Text = "latency (ms, log scale)", "fraction of requests"
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Left, p.Legend.Top = true, true
	for _, sys := range res.Config.Systems {
		var xys plotter.XYs
		for _, pt := range res.LatencyCDF[wl][sys] {
			if pt[0] > 0 {
				xys = append(xys, plotter.XY{X: pt[0], Y: pt[1]})
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.LineStyle.Color, l.LineStyle.Width = sysColor[sys], vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(sys, l)
	}
	p.Add(plotter.NewGrid())
	return p, nil
}

// ratioChartWidth gives each column of the ratio chart 0.8 in, 8 in at
// least.
func ratioChartWidth(res *Results) vg.Length {
	n := 3 * len(res.Summary)
	if res.Failover != nil {
		n++
	}
	return max(8*vg.Inch, vg.Length(n)*0.8*vg.Inch)
}

// ratioChart: optoutd / the other system's ops/s, p50 latency and CPU per
// request per round for each workload, and the per-round failover write ratio, with a
// line at 1.
func ratioChart(res *Results) (*plot.Plot, error) {
	a, b := res.sides()
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s / %s per round (dots) and median (black square)", a, b)
	p.Y.Label.Text = fmt.Sprintf("ratio %s / %s", a, b)
	var labels []string
	var pts, med plotter.XYs
	add := func(label string, vals []*float64) {
		x := float64(len(labels))
		labels = append(labels, label)
		var v []float64
		for i, r := range vals {
			if r != nil {
				v = append(v, *r)
				pts = append(pts, plotter.XY{X: x + 0.08*float64(i-len(vals)/2), Y: *r})
			}
		}
		if s := summarize(v); s.N > 0 {
			med = append(med, plotter.XY{X: x, Y: s.Median})
		}
	}
	metrics := []struct {
		label string
		f     func(RoundRatio) *float64
	}{
		{"ops/s", func(r RoundRatio) *float64 { return r.OpsPerSec }},
		{"p50", func(r RoundRatio) *float64 { return r.P50 }},
		{"CPU/op", func(r RoundRatio) *float64 { return r.CPUPerOp }},
	}
	for _, m := range metrics {
		for _, wl := range []string{wlReads, wlWrites, wlCAS} {
			if ws := res.Summary[wl]; ws != nil {
				var v []*float64
				for _, pr := range ws.PerRound {
					v = append(v, m.f(pr))
				}
				add(wl+"\n"+m.label, v)
			}
		}
	}
	if f := res.Failover; f != nil {
		var v []*float64
		for _, pr := range f.PerRound {
			v = append(v, pr.Write)
		}
		add("failover\ntime", v)
	}
	one := plotter.NewFunction(func(float64) float64 { return 1 })
	one.Color, one.Dashes = color.Gray{Y: 0x80}, []vg.Length{vg.Points(4), vg.Points(4)}
	p.Add(one)
	if len(pts) > 0 {
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle.Color, s.GlyphStyle.Radius = sysColor[sysOptoutd], vg.Points(3)
		p.Add(s)
	}
	if len(med) > 0 {
		s, err := plotter.NewScatter(med)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle.Shape, s.GlyphStyle.Radius = draw.BoxGlyph{}, vg.Points(2)
		s.GlyphStyle.Color = color.Black
		p.Add(s)
	}
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.5, float64(len(labels))-0.5
	p.Y.Min = 0
	for _, pt := range pts {
		p.Y.Max = max(p.Y.Max, 1.08*pt.Y) // room for the top dot
	}
	p.Y.Tick.Marker = ratioTicks{}
	p.Add(plotter.NewGrid())
	return p, nil
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
