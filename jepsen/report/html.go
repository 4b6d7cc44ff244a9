package report

import (
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/optoutd/optoutd/jepsen/checker"
)

// SafeName turns a key into a file name part.
func SafeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// WriteVisualizations writes porcupine's visualisation of every failed key
// (lin-<key>.html) and returns the file names.
func WriteVisualizations(dir string, failed []checker.KeyResult, timeout time.Duration) ([]string, error) {
	var files []string
	for _, k := range failed {
		if k.Verdict != checker.NotLinearizable {
			continue // a timeout has no partial linearisation worth drawing
		}
		model, info := checker.Visualize(k, timeout)
		name := "lin-" + SafeName(k.Key) + ".html"
		if err := porcupine.VisualizePath(model, info, filepath.Join(dir, name)); err != nil {
			return files, fmt.Errorf("report: visualize %s: %w", k.Key, err)
		}
		files = append(files, name)
	}
	return files, nil
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"f1": func(v float64) string { return fmt.Sprintf("%.1f", v) },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.R.Name}} — {{.R.Verdict}}</title>
<style>
body{font-family:sans-serif;margin:2em;max-width:1300px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
.PASS,.CAUGHT{color:#080}.FAIL,.MISSED{color:#c00}
iframe{width:100%;height:600px;border:1px solid #ccc}
img{max-width:100%}
</style></head><body>
<h1>{{.R.Name}}: <span class="{{.R.Verdict}}">{{.R.Verdict}}</span></h1>
<p>backend {{.R.Backend}}, {{.R.Nodes}} nodes, concurrency {{.R.Concurrency}}, {{.R.Keys}} keys, seed {{.R.Seed}},
workload {{f1 .R.WorkloadSeconds}} s, wall {{f1 .R.WallSeconds}} s, started {{.R.Started.Format "2006-01-02 15:04:05"}}
{{if .R.NegativeControl}}{{if not .R.Enforce}}<br><b>Negative control</b>: every node serves reads without a read index (--unsafe-stale-reads-for-chaos-tests); the checker must find a violation.{{end}}{{end}}</p>
<p>{{.R.Ops.Total}} operations, {{.R.Ops.Checked}} checked for linearizability over {{.R.Linearizability.Keys}} keys
({{.R.Linearizability.SecondPass}} needed the second pass); check time {{f1 .R.CheckSeconds}} s.</p>

<h2>Anomalies ({{len .R.Anomalies}})</h2>
{{if .R.Anomalies}}<table><tr><th>type</th><th>key</th><th>detail</th></tr>
{{range .R.Anomalies}}<tr><td>{{.Type}}</td><td>{{.Key}}</td><td>{{.Detail}}</td></tr>{{end}}</table>{{else}}<p>none</p>{{end}}
{{if .R.HarnessErrors}}<h3>Harness errors</h3><ul>{{range .R.HarnessErrors}}<li>{{.}}</li>{{end}}</ul>{{end}}

<h2>Faults</h2>
<table><tr><th>#</th><th>kind</th><th>targets</th><th>start s</th><th>end s</th><th>note</th><th>error</th></tr>
{{range .R.Faults}}<tr><td>{{.ID}}</td><td>{{.Kind}}</td><td>{{.Targets}}</td><td>{{f1 .StartS}}</td><td>{{f1 .EndS}}</td><td>{{.Note}}</td><td>{{.Error}}</td></tr>{{end}}</table>

<h2>Unavailability</h2>
<p>Longest stretch without a successful write / read, from each fault's start to {{f1 .R.Unavailability.GraceS}} s after it healed.</p>
<table><tr><th>kind</th><th>faults</th><th>max write gap s</th><th>mean write gap s</th><th>max read gap s</th><th>mean read gap s</th></tr>
{{range $k, $v := .R.Unavailability.ByKind}}<tr><td>{{$k}}</td><td>{{$v.Faults}}</td><td>{{f1 $v.MaxWriteGapS}}</td><td>{{f1 $v.MeanWriteGapS}}</td><td>{{f1 $v.MaxReadGapS}}</td><td>{{f1 $v.MeanReadGapS}}</td></tr>{{end}}</table>

<h2>Operations</h2>
<table><tr><th>type</th><th>outcomes</th></tr>
{{range .Types}}<tr><td>{{.Name}}</td><td>{{.Counts}}</td></tr>{{end}}</table>

<h2>Latency</h2><img src="latency.png" alt="latency">
<h2>Throughput</h2><img src="rate.png" alt="throughput">

<h2>Checks</h2>
<ul>
<li>linearizability: {{if .R.Linearizability.Valid}}valid{{else}}INVALID{{end}}</li>
<li>set: {{if .R.Set.Valid}}valid{{else}}INVALID{{end}} — {{.R.Set.Attempted}} adds, {{.R.Set.Acked}} acknowledged, {{.R.Set.Unknown}} unknown ({{.R.Set.UnknownPresent}} present), {{.R.Set.NotApplied}} not applied</li>
<li>watch: {{if .R.Watch.Valid}}valid{{else}}INVALID{{end}} — {{.R.Watch.Streams}} streams, {{.R.Watch.Delivered}} changes delivered, {{.R.Watch.Restarts}} restarts, final index {{.R.Watch.FinalIndex}}</li>
<li>version monotonicity: {{if .R.Monotonic.Valid}}valid{{else}}INVALID{{end}}</li>
<li>convergence: {{if .R.Convergence.Valid}}valid{{else}}INVALID: {{.R.Convergence.Reason}}{{end}} (waited {{f1 .R.Convergence.WaitedSeconds}} s)</li>
{{with .R.Enforce}}<li>enforcement: {{if .Valid}}valid{{else}}INVALID {{.Counts}}{{end}}</li>{{end}}
</ul>
{{with .R.Enforce}}<h2>Enforcement</h2>
{{if $.R.NegativeControl}}<p><b>Negative control</b>: the clean services process on the producer's receipt alone (no fence); the checker must find an event processed after an acknowledged opt-out.</p>{{end}}
<table>
<tr><td>events by role</td><td>{{.EventsByRole}}</td></tr>
<tr><td>gates</td><td>{{.Gates}} ({{.GatesAllowed}} allowed, {{.GatesFailed}} failed closed)</td></tr>
<tr><td>fences</td><td>{{.Fences}} ({{.FencesFailed}} failed closed)</td></tr>
<tr><td>processed by clean services</td><td>{{.Processed}} ({{.AfterReOptIn}} with a receipt from before a replaced opt-out, {{.UnderOverride}} under an ALLOW override only)</td></tr>
<tr><td>discarded by reason</td><td>{{.Discarded}}</td></tr>
<tr><td>flips acknowledged</td><td>{{.OptOuts}} opt-outs, {{.OptIns}} re-opt-ins, {{.FlipsUnknown}} unknown</td></tr>
<tr><td>ALLOW overrides</td><td>{{.Overrides}} created, {{.OverridesUnk}} unknown</td></tr>
<tr><td>forged receipts</td><td>{{.ForgedRefused}} refused of {{.ForgedFenced}} fenced</td></tr>
<tr><td>false events</td><td>{{.FalseRefused}} refused at the gate of {{.FalseGated}}</td></tr>
<tr><td>planted violations</td><td>{{.PlantedFlagged}} flagged of {{.Planted}}</td></tr>
<tr><td>violations named by verdicts</td><td>{{.Violations}} ({{.Stored}} found by the final ListViolations)</td></tr>
<tr><td>reports judged</td><td>{{.Reports}} ({{.CleanReports}} clean processings, {{.UnfencedFlagged}} unfenced ones flagged, {{.Unreported}} unreported)</td></tr>
<tr><td>anomalies</td><td>{{.Counts}}</td></tr>
</table>{{end}}
{{with .R.EnforceQueue}}<p>Queue: {{.Events}} events, {{.Deliveries}} deliveries ({{.Duplicates}} duplicates, {{.LongWaits}} long waits, {{.Redelivered}} redelivered after a failed fence, {{.GaveUp}} given up, {{.Undelivered}} undelivered at the end).</p>{{end}}
{{range .Vis}}<h2>Porcupine: {{.}}</h2><p><a href="{{.}}">open</a></p><iframe src="{{.}}"></iframe>{{end}}
<p>Files: <a href="results.json">results.json</a>, <a href="history.jsonl">history.jsonl</a>, node logs in <a href="nodes/">nodes/</a>.</p>
</body></html>
`))

type typeRow struct{ Name, Counts string }

// WriteHTML writes report.html.
func WriteHTML(path string, r *Results, vis []string) error {
	var rows []typeRow
	for t, m := range r.Ops.ByType {
		var parts []string
		for o, n := range m {
			parts = append(parts, fmt.Sprintf("%s %d", o, n))
		}
		sort.Strings(parts)
		rows = append(rows, typeRow{t, strings.Join(parts, ", ")})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := page.Execute(f, map[string]any{"R": r, "Types": rows, "Vis": vis}); err != nil {
		_ = f.Close()
		return fmt.Errorf("report: %w", err)
	}
	return f.Close()
}
