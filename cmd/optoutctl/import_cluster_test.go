package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// importLines is the size of the end-to-end import.
const importLines = 100_000

// TestImportAgainstRealCluster imports 100k lines with planted bad lines
// into a real three-node cluster: a dry run first, which writes nothing
// and predicts the real run's counts; the import, whose records every node
// then answers for; the same import again, which the batch keys replay;
// and --strict, which writes nothing when a line is bad.
func TestImportAgainstRealCluster(t *testing.T) {
	eps := cliCluster(t)
	set := runJSON(t, "set", "imp-000005", "analytics", "opted_out")

	dir := t.TempDir()
	file := filepath.Join(dir, "suppressions.csv")
	var buf bytes.Buffer
	buf.WriteString("subject_id,purpose,state,time,source\n")
	bad, refused := map[int]string{}, map[int]string{}
	for i := range importLines {
		line := i + 2
		subject, purpose, state := fmt.Sprintf("imp-%06d", i), "analytics", "opted_out"
		if i%3 == 1 {
			purpose = "email_marketing"
		}
		ts := "2024-03-01T10:00:00Z"
		switch {
		case i == 5:
			state = "opted_in" // over the opt-out set above: deny wins
			refused[line] = "failed_precondition"
		case i == 77:
			purpose = "no_such_purpose"
			refused[line] = "not_found"
		case i%20_000 == 3:
			state = "sideways"
			bad[line] = "state"
		case i == 4242:
			ts = "last tuesday"
			bad[line] = "time"
		case i == 90_001:
			subject = strings.Repeat("s", 300)
			bad[line] = "subject_id"
		}
		fmt.Fprintf(&buf, "%s,%s,%s,%s,esp-export\n", subject, purpose, state, ts)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	good := importLines - len(bad) - len(refused)

	imp := func(args ...string) (int, obj, string) {
		t.Helper()
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		code := NewMain(&out, &errb).Main(ctx, append([]string{"-o", "json", "--timeout", "30s", "import", file}, args...))
		var sum obj
		if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
			t.Fatalf("import %v printed %q (stderr %s): %v", args, out.String(), errb.String(), err)
		}
		return code, sum, errb.String()
	}
	num := func(o obj, k string) int {
		f, _ := o[k].(float64)
		return int(f)
	}
	checkCounts := func(what string, code int, sum obj, stderr string) {
		t.Helper()
		if code != 1 {
			t.Errorf("%s: exit %d, want 1 (there were problems)", what, code)
		}
		if num(sum, "lines") != importLines || num(sum, "bad_lines") != len(bad) || num(sum, "refused") != len(refused) || num(sum, "written") != good {
			t.Errorf("%s: summary %v; want %d lines, %d bad, %d refused, %d written", what, sum, importLines, len(bad), len(refused), good)
		}
		for line := range bad {
			if !strings.Contains(stderr, fmt.Sprintf("line %d: ", line)) {
				t.Errorf("%s: bad line %d not reported:\n%s", what, line, stderr)
			}
		}
	}

	// The dry run predicts, and writes nothing.
	code, dry, stderr := imp("--dry-run")
	checkCounts("dry run", code, dry, stderr)
	if dry["dry_run"] != true || num(dry, "new") != good {
		t.Errorf("dry run: %v", dry)
	}
	if out := runJSON(t, "check", "imp-000012", "analytics"); out["decision"] != "DECISION_ALLOW" {
		t.Fatalf("the dry run wrote: %v", out)
	}

	// The import, with a report of every problem.
	report := filepath.Join(dir, "report.jsonl")
	code, sum, stderr := imp("--report", report, "--concurrency", "4")
	checkCounts("import", code, sum, stderr)
	if num(sum, "new") != good || num(sum, "replayed") != 0 {
		t.Errorf("import: %v", sum)
	}
	reported := map[int]string{}
	f, err := os.Open(report)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p struct {
			Line int    `json:"line"`
			Code string `json:"code"`
		}
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		reported[p.Line] = p.Code
	}
	_ = f.Close()
	for line, want := range refused {
		if reported[line] != want {
			t.Errorf("report: line %d is %q, want %q", line, reported[line], want)
		}
	}
	for line := range bad {
		if reported[line] != "bad_line" {
			t.Errorf("report: line %d is %q, want bad_line", line, reported[line])
		}
	}
	if len(reported) != len(bad)+len(refused) {
		t.Errorf("report has %d lines, want %d", len(reported), len(bad)+len(refused))
	}
	// Every node answers for the imported records; the opt-out that an
	// opt-in line met still stands.
	for i, ep := range eps {
		subject := fmt.Sprintf("imp-%06d", 33_333*i+12)
		if out := runJSON(t, "--endpoints", ep, "check", subject, "analytics"); out["decision"] != "DECISION_DENY" {
			t.Errorf("%s: %s: %v", ep, subject, out)
		}
	}
	got := runJSON(t, "get", "imp-000005", "analytics")
	if rec, _ := got["record"].(obj); rec["version"] != set["version"] {
		t.Errorf("the refused opt-in changed imp-000005: %v", got)
	}
	rec := runJSON(t, "get", "imp-000012", "analytics")["record"].(obj)
	if rec["source"] != "esp-export" || rec["reason"] != "observed 2024-03-01T10:00:00Z" {
		t.Errorf("imported record: %v", rec)
	}

	// The same import again: every batch is replayed, nothing rewritten.
	code, again, stderr := imp()
	checkCounts("again", code, again, stderr)
	if num(again, "replayed") != good || num(again, "new") != 0 {
		t.Errorf("again: %v", again)
	}
	if r2 := runJSON(t, "get", "imp-000012", "analytics")["record"].(obj); r2["version"] != rec["version"] {
		t.Errorf("the second run rewrote imp-000012: version %v, then %v", rec["version"], r2["version"])
	}

	// Export: every record, as JSON lines, CSV and consent records, and
	// the whole history, each a page at a time.
	lines := func(path string) []string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	export := func(name string, args ...string) []string {
		t.Helper()
		path := filepath.Join(dir, name)
		code, _, errOut := runMain(t, append([]string{"--timeout", "30s", "export"}, append(args, "--out", path)...)...)
		if code != 0 || !strings.Contains(errOut, `"exported":`) {
			t.Fatalf("export %v: exit %d, %s", args, code, errOut)
		}
		return lines(path)
	}
	if got := export("records.jsonl", "records"); len(got) != good+1 || !strings.Contains(got[0], `"subject_id":`) {
		t.Errorf("records export: %d lines (want %d), first %q", len(got), good+1, got[0])
	}
	csvLines := export("records.csv", "records", "--format", "csv", "--purpose", "email_marketing")
	if csvLines[0] != "subject_id,purpose,state,version,updated_at,source,reason" || len(csvLines) < 30_000 {
		t.Errorf("csv export: %d lines, header %q", len(csvLines), csvLines[0])
	}
	for _, l := range csvLines[1:] {
		if !strings.Contains(l, ",email_marketing,opted_out,") {
			t.Fatalf("csv export has %q", l)
		}
	}
	consent := export("consent.jsonl", "records", "--format", "consent-record", "--controller", "Example Ltd", "--jurisdiction", "EU", "--page-size", "777")
	var cr struct {
		Version        string `json:"version"`
		State          string `json:"state"`
		PIIPrincipalID string `json:"piiPrincipalId"`
		Controllers    []struct {
			PIIController string `json:"piiController"`
		} `json:"piiControllers"`
	}
	if err := json.Unmarshal([]byte(consent[0]), &cr); err != nil || cr.Version != "KI-CR-v1.1.0" || cr.State != "withdrawn" ||
		cr.PIIPrincipalID == "" || len(cr.Controllers) != 1 || cr.Controllers[0].PIIController != "Example Ltd" || len(consent) != good+1 {
		t.Errorf("consent export: %d lines, first %s (%v)", len(consent), consent[0], err)
	}
	// The history: the Set, then every imported record once (the second
	// run replayed), oldest first.
	hist := export("history.jsonl", "history")
	if len(hist) != good+1 || !strings.Contains(hist[0], `"subject_id":"imp-000005"`) {
		t.Errorf("history export: %d lines (want %d), first %q", len(hist), good+1, hist[0])
	}

	// --strict: a bad line means nothing is written.
	strict := filepath.Join(dir, "strict.jsonl")
	if err := os.WriteFile(strict, []byte(`{"subject_id":"strict-1","purpose":"analytics","state":"opted_out"}`+"\n"+
		`{"subject_id":"strict-2","purpose":"analytics","state":"nope"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runMain(t, "import", strict, "--strict")
	if code != 1 || !strings.Contains(errOut, "line 2: state") || !strings.Contains(errOut, "nothing was written (--strict)") {
		t.Errorf("strict: exit %d, stderr %s", code, errOut)
	}
	if out := runJSON(t, "check", "strict-1", "analytics"); out["decision"] != "DECISION_ALLOW" {
		t.Errorf("strict wrote strict-1: %v", out)
	}
}
