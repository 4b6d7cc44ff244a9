package report

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/optoutd/optoutd/jepsen/checker"
	"github.com/optoutd/optoutd/jepsen/history"
	"github.com/optoutd/optoutd/jepsen/nemesis"
	"github.com/optoutd/optoutd/jepsen/workload"
	"gonum.org/v1/plot/vg/draw"
)

func sampleOps() []history.Op {
	var ops []history.Op
	types := []history.Type{history.Get, history.Check, history.Write, history.CAS, history.Add}
	outs := []history.Outcome{history.OK, history.NotFound, history.OK, history.Mismatch, history.Unknown, history.NotApplied, history.Fail}
	for i := 0; i < 400; i++ {
		call := int64(i) * 25e6
		ops = append(ops, history.Op{Index: i, Type: types[i%len(types)], Outcome: outs[i%len(outs)], Key: "reg-0",
			Call: call, Return: call + int64(1+i%7)*3e6})
	}
	return ops
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	if img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
		t.Fatalf("%s is tiny: %v", path, img.Bounds())
	}
}

func TestPlotsWritePNGs(t *testing.T) {
	dir := t.TempDir()
	faults, _ := Faults([]nemesis.Record{{ID: 1, Kind: "kill", Start: 2e9, End: 4e9}, {ID: 2, Kind: "pause", Start: 5e9, End: 7e9}})
	if err := LatencyPlot(filepath.Join(dir, "latency.png"), "t", sampleOps(), faults); err != nil {
		t.Fatal(err)
	}
	if err := RatePlot(filepath.Join(dir, "rate.png"), "t", sampleOps(), faults); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, filepath.Join(dir, "latency.png"))
	checkPNG(t, filepath.Join(dir, "rate.png"))
	// No ops at all must still draw.
	if err := LatencyPlot(filepath.Join(dir, "empty.png"), "t", nil, nil); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, filepath.Join(dir, "empty.png"))
}

func TestUnavailability(t *testing.T) {
	s := int64(time.Second)
	ops := []history.Op{
		{Type: history.Write, Outcome: history.OK, Return: 1 * s},
		{Type: history.Get, Outcome: history.OK, Return: 1 * s},
		{Type: history.Write, Outcome: history.NotApplied, Return: 5 * s}, // not a success
		{Type: history.Get, Outcome: history.OK, Return: 3 * s},
		{Type: history.CAS, Outcome: history.Mismatch, Return: 7 * s}, // went through the log
		{Type: history.Get, Outcome: history.OK, Return: 9 * s, Final: true},
	}
	u := ComputeUnavailability(ops, []nemesis.Record{{ID: 1, Kind: "kill", Start: 2 * s, End: 4 * s}}, 4*s, 20*s)
	f := u.PerFault[0]
	// window [2,8]: writes at 7 -> gaps 5 and 1; reads at 3 -> gaps 1 and 5.
	if f.WriteGapS != 5 || f.ReadGapS != 5 || f.WindowS != 6 || f.WritesInWin != 1 {
		t.Fatalf("%+v", f)
	}
	if k := u.ByKind["kill"]; k.Faults != 1 || k.MaxWriteGapS != 5 || k.MeanReadGapS != 5 {
		t.Fatalf("%+v", k)
	}
}

func TestResultsVerdicts(t *testing.T) {
	r := &Results{Name: "x", Linearizability: checker.LinearResult{Valid: true}, Set: checker.SetResult{Valid: true},
		Monotonic: checker.MonotonicResult{Valid: true}, Convergence: checker.ConvergenceResult{Valid: true}}
	r.CollectAnomalies()
	r.Decide()
	if !r.OK() || r.Verdict != "PASS" {
		t.Fatalf("%+v", r)
	}
	r.Set.Lost = []string{"set-w1-1 missing on [n2]"}
	r.CollectAnomalies()
	r.Decide()
	if r.OK() || r.Verdict != "FAIL" || len(r.Anomalies) != 1 {
		t.Fatalf("%+v", r)
	}
	neg := &Results{NegativeControl: true, Linearizability: checker.LinearResult{Valid: true}, Convergence: checker.ConvergenceResult{Valid: true}}
	neg.CollectAnomalies()
	neg.Decide()
	if neg.OK() || neg.Verdict != "MISSED" {
		t.Fatalf("negative control without a violation must fail: %+v", neg)
	}
	neg.Linearizability = checker.LinearResult{Failed: []checker.KeyResult{{Key: "reg-0", Verdict: checker.NotLinearizable}}}
	neg.CollectAnomalies()
	neg.Decide()
	if !neg.OK() || neg.Verdict != "CAUGHT" {
		t.Fatalf("%+v", neg)
	}
}

func TestHTMLAndVisualization(t *testing.T) {
	dir := t.TempDir()
	u64 := func(v uint64) *uint64 { return &v }
	ops := []history.Op{
		{Index: 0, Key: "reg-0", Type: history.Write, Tag: "a", State: "opted_out", Outcome: history.OK, Version: 5, Call: 0, Return: 10},
		{Index: 1, Key: "reg-0", Type: history.CAS, Tag: "b", State: "opted_in", Expected: u64(5), Outcome: history.OK, Version: 7, Call: 20, Return: 30, Process: 1},
		{Index: 2, Key: "reg-0", Type: history.Get, Tag: "a", State: "opted_out", Outcome: history.OK, Version: 5, Call: 40, Return: 50, Process: 2},
	}
	lin := checker.CheckLinearizable(context.Background(), ops, checker.DefaultOptions())
	if lin.Valid {
		t.Fatal("stale read not caught")
	}
	vis, err := WriteVisualizations(dir, lin.Failed, time.Minute)
	if err != nil || len(vis) != 1 {
		t.Fatalf("%v %v", vis, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, vis[0]))
	if !strings.Contains(string(b), "get → a opted_out v5") {
		t.Fatal("visualisation lacks the operation descriptions")
	}
	r := &Results{Name: "run", Verdict: "FAIL", Linearizability: lin, Ops: Summarize(ops)}
	r.CollectAnomalies()
	if err := WriteHTML(filepath.Join(dir, "report.html"), r, vis); err != nil {
		t.Fatal(err)
	}
	h, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	for _, want := range []string{"FAIL", vis[0], "latency.png", "rate.png", "linearizability"} {
		if !strings.Contains(string(h), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	rec := history.NewRecorder()
	rec.Add(history.Op{Outcome: history.OK})
	rec.Add(history.Op{Outcome: history.Fail})
	var buf bytes.Buffer
	p := &Progress{W: &buf, Label: "kill", Total: time.Minute, Rec: rec, Fault: func() string { return "kill[n2]" }}
	line := p.Line()
	if !strings.Contains(line, "ops=2 ok=1 err=1 fault=kill[n2]") || !strings.HasPrefix(line, "[kill]") {
		t.Fatalf("line %q", line)
	}
}

func TestEveryOpTypeHasAShape(t *testing.T) {
	// A series with a nil glyph is silently not drawn: the types both
	// workloads plot most have their own, and any other falls back.
	for _, typ := range []history.Type{history.Get, history.Check, history.Write, history.CAS, history.Add, history.Gate, history.Fence,
		history.Process, history.OptOut, history.OptIn, history.Override, history.Report} {
		if _, ok := typeShape[typ]; !ok {
			t.Errorf("%s has no glyph of its own", typ)
		}
	}
	if _, ok := shapeOf(history.StateRead).(draw.CircleGlyph); !ok {
		t.Error("a type without a glyph is not drawn as a circle")
	}
}

func TestEnforcementResults(t *testing.T) {
	ok := func() *Results {
		return &Results{Name: "enforce", Workload: "enforce", Linearizability: checker.LinearResult{Valid: true},
			Set: checker.SetResult{Valid: true}, Monotonic: checker.MonotonicResult{Valid: true}, Convergence: checker.ConvergenceResult{Valid: true},
			Enforce: &checker.EnforceResult{Valid: true, Events: 9, Processed: 5, Discarded: map[string]int{"denied_now": 2, "invalid_receipt": 1},
				ForgedRefused: 1, ForgedFenced: 1, Planted: 3, PlantedFlagged: 3, Violations: 3, Stored: 3, Counts: map[string]int{}},
			EnforceQueue: &workload.QueueStats{Events: 9, Deliveries: 12, Duplicates: 3}}
	}
	r := ok()
	r.CollectAnomalies()
	r.Decide()
	line := r.SummaryLine()
	if r.Verdict != "PASS" || !strings.Contains(line, "enforce: 9 events, 5 processed, 3 discarded (2 for a later opt-out), 1 forged receipts refused of 1 fenced, planted violations flagged 3/3, violations stored 3/3") {
		t.Fatalf("%s: %s", r.Verdict, line)
	}
	// Findings become anomalies, with a line for those not listed.
	r = ok()
	r.Enforce.Counts = map[string]int{checker.EnfAfterOptOut: 25}
	for range checker.MaxListed {
		r.Enforce.Findings = append(r.Enforce.Findings, checker.EnforceFinding{Type: checker.EnfAfterOptOut, Key: "enf-1", Detail: "op #1"})
	}
	r.CollectAnomalies()
	r.Decide()
	if r.Verdict != "FAIL" || len(r.Anomalies) != checker.MaxListed+1 || !strings.Contains(r.Anomalies[checker.MaxListed].Detail, "and 5 more") {
		t.Fatalf("%s %+v", r.Verdict, r.Anomalies)
	}
	// The enforcement negative control is caught by its own rule only: a
	// linearizability failure (or anything else) does not count.
	neg := ok()
	neg.NegativeControl = true
	neg.Linearizability = checker.LinearResult{Failed: []checker.KeyResult{{Key: "reg-0", Verdict: checker.NotLinearizable}}}
	neg.Enforce.Counts = map[string]int{checker.EnfForgedAccepted: 1}
	neg.CollectAnomalies()
	neg.Decide()
	if neg.OK() || neg.Verdict != "MISSED" {
		t.Fatalf("%+v", neg)
	}
	neg.Enforce.Counts[checker.EnfAfterOptOut] = 1
	neg.CollectAnomalies()
	neg.Decide()
	if !neg.OK() || neg.Verdict != "CAUGHT" {
		t.Fatalf("%+v", neg)
	}
	dir := t.TempDir()
	if err := WriteHTML(filepath.Join(dir, "report.html"), neg, nil); err != nil {
		t.Fatal(err)
	}
	h, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	for _, want := range []string{"<h2>Enforcement</h2>", "(no fence)", "planted violations", "Queue: 9 events, 12 deliveries (3 duplicates"} {
		if !strings.Contains(string(h), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(string(h), "unsafe-stale-reads") {
		t.Error("the enforcement negative control is described as the stale-read one")
	}
}
