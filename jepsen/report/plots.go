package report

import (
	"fmt"
	"image/color"
	"sort"

	"github.com/optoutd/optoutd/jepsen/history"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Colours by outcome, as Jepsen colours ok/info/fail; shapes by op type.
var outcomeColor = map[history.Outcome]color.RGBA{
	history.OK:         {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	history.NotFound:   {R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
	history.Mismatch:   {R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	history.NotApplied: {R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	history.Unknown:    {R: 0xe3, G: 0xb5, B: 0x00, A: 0xff},
	history.Fail:       {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

var typeShape = map[history.Type]draw.GlyphDrawer{
	history.Get:   draw.CircleGlyph{},
	history.Check: draw.RingGlyph{},
	history.Write: draw.TriangleGlyph{},
	history.CAS:   draw.SquareGlyph{},
	history.Add:   draw.CrossGlyph{},
	// The enforcement workload's (never in the same run as the above).
	history.Gate:     draw.PlusGlyph{},
	history.Fence:    draw.BoxGlyph{},
	history.Process:  draw.PyramidGlyph{},
	history.OptOut:   draw.TriangleGlyph{},
	history.OptIn:    draw.SquareGlyph{},
	history.Override: draw.CrossGlyph{},
	history.Report:   draw.RingGlyph{},
}

// shapeOf is typ's glyph; a type without one is drawn as a circle rather
// than not at all.
func shapeOf(typ history.Type) draw.GlyphDrawer {
	if g, ok := typeShape[typ]; ok {
		return g
	}
	return draw.CircleGlyph{}
}

// faultColors shade fault intervals, one colour per kind.
var faultColors = []color.NRGBA{
	{R: 0xff, G: 0x99, B: 0x99, A: 0x40}, {R: 0x99, G: 0xcc, B: 0xff, A: 0x40},
	{R: 0x99, G: 0xff, B: 0x99, A: 0x40}, {R: 0xff, G: 0xcc, B: 0x66, A: 0x40},
	{R: 0xcc, G: 0x99, B: 0xff, A: 0x40}, {R: 0x99, G: 0xff, B: 0xff, A: 0x40},
	{R: 0xff, G: 0x99, B: 0xff, A: 0x40}, {R: 0xcc, G: 0xcc, B: 0x99, A: 0x40},
	{R: 0xbb, G: 0xbb, B: 0xbb, A: 0x40},
}

// shadeFaults adds one translucent rectangle per fault from ylo to yhi,
// with one legend entry per kind.
func shadeFaults(p *plot.Plot, faults []Fault, ylo, yhi float64) error {
	kinds := map[string]int{}
	var names []string
	for _, f := range faults {
		if _, ok := kinds[f.Kind]; !ok {
			kinds[f.Kind] = len(kinds)
			names = append(names, f.Kind)
		}
	}
	legend := map[string]*plotter.Polygon{}
	for _, f := range faults {
		poly, err := plotter.NewPolygon(plotter.XYs{{X: f.StartS, Y: ylo}, {X: f.EndS, Y: ylo}, {X: f.EndS, Y: yhi}, {X: f.StartS, Y: yhi}})
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		poly.Color = faultColors[kinds[f.Kind]%len(faultColors)]
		poly.LineStyle.Width = 0
		p.Add(poly)
		legend[f.Kind] = poly
	}
	for _, n := range names {
		p.Legend.Add("fault: "+n, legend[n])
	}
	return nil
}

type series struct {
	typ history.Type
	out history.Outcome
}

// LatencyPlot draws every operation's latency against its start time,
// coloured by outcome and shaped by type, with faults shaded.
func LatencyPlot(path, title string, ops []history.Op, faults []Fault) error {
	p := plot.New()
	p.Title.Text = title + " — latency"
	p.X.Label.Text = "time since start (s)"
	p.Y.Label.Text = "latency (ms)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	groups := map[series]plotter.XYs{}
	ylo, yhi := 1e9, 0.0
	for _, op := range ops {
		if op.Final {
			continue
		}
		ms := max(float64(op.Return-op.Call)/1e6, 0.01)
		ylo, yhi = min(ylo, ms), max(yhi, ms)
		k := series{op.Type, op.Outcome}
		groups[k] = append(groups[k], plotter.XY{X: secs(op.Call), Y: ms})
	}
	if len(groups) == 0 {
		ylo, yhi = 0.1, 1
		p.X.Min, p.X.Max = 0, 1
	}
	// A log axis must never see its default range, which includes 0.
	p.Y.Min, p.Y.Max = ylo, yhi*1.2
	if err := shadeFaults(p, faults, ylo, yhi); err != nil {
		return err
	}
	keys := make([]series, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].typ != keys[j].typ {
			return keys[i].typ < keys[j].typ
		}
		return keys[i].out < keys[j].out
	})
	for _, k := range keys {
		s, err := plotter.NewScatter(groups[k])
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		s.GlyphStyle.Color = outcomeColor[k.out]
		s.GlyphStyle.Shape = shapeOf(k.typ)
		s.GlyphStyle.Radius = vg.Points(1.6)
		p.Add(s)
		p.Legend.Add(fmt.Sprintf("%s %s (%d)", k.typ, k.out, len(groups[k])), s)
	}
	return save(p, path)
}

// RatePlot draws throughput and errors per second, with faults shaded.
func RatePlot(path, title string, ops []history.Op, faults []Fault) error {
	p := plot.New()
	p.Title.Text = title + " — throughput"
	p.X.Label.Text = "time since start (s)"
	p.Y.Label.Text = "operations per second"
	p.Legend.Top = true
	type line struct {
		name  string
		col   color.RGBA
		match func(history.Op) bool
	}
	lines := []line{
		{"reads ok", outcomeColor[history.OK], func(o history.Op) bool {
			return o.Type.IsRead() && (o.Outcome == history.OK || o.Outcome == history.NotFound)
		}},
		{"writes ok", color.RGBA{G: 0x80, A: 0xff}, func(o history.Op) bool {
			return o.Type.IsWrite() && (o.Outcome == history.OK || o.Outcome == history.Mismatch)
		}},
		{"reads failed", outcomeColor[history.Fail], func(o history.Op) bool { return o.Type.IsRead() && o.Outcome == history.Fail }},
		{"writes not applied", outcomeColor[history.NotApplied], func(o history.Op) bool { return o.Outcome == history.NotApplied }},
		{"writes unknown", outcomeColor[history.Unknown], func(o history.Op) bool { return o.Outcome == history.Unknown }},
	}
	var last int64
	for _, op := range ops {
		if !op.Final {
			last = max(last, op.Return)
		}
	}
	buckets := int(last/1e9) + 1
	counts := make([][]float64, len(lines))
	yhi := 1.0
	for i := range lines {
		counts[i] = make([]float64, buckets)
	}
	for _, op := range ops {
		if op.Final {
			continue
		}
		b := int(op.Return / 1e9)
		for i, l := range lines {
			if l.match(op) {
				counts[i][b]++
				yhi = max(yhi, counts[i][b])
			}
		}
	}
	if err := shadeFaults(p, faults, 0, yhi); err != nil {
		return err
	}
	for i, l := range lines {
		xys := make(plotter.XYs, buckets)
		for b := range xys {
			xys[b] = plotter.XY{X: float64(b) + 0.5, Y: counts[i][b]}
		}
		ln, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		ln.Color = l.col
		ln.Width = vg.Points(1.2)
		p.Add(ln)
		p.Legend.Add(l.name, ln)
	}
	return save(p, path)
}

func save(p *plot.Plot, path string) error {
	if err := p.Save(12*vg.Inch, 6*vg.Inch, path); err != nil {
		return fmt.Errorf("report: save %s: %w", path, err)
	}
	return nil
}
