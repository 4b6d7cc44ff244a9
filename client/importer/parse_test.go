package importer

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/optoutd/optoutd"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func readAll(t *testing.T, format Format, in string) ([]Row, error) {
	t.Helper()
	rd := NewReader(strings.NewReader(in), format, Defaults{Source: "import:test", Now: now})
	var rows []Row
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
}

// TestCSVLinesAreReadOneByOne: columns in any order, optional ones filled
// from the defaults, the time kept in the reason; every bad line is
// reported with its number and the lines after it are still read.
func TestCSVLinesAreReadOneByOne(t *testing.T) {
	in := "\ufeffPurpose,subject_id,state,time,source\r\n" +
		"analytics,u1,opted_out,2024-03-01T10:00:00Z,mailchimp\r\n" +
		"\n" +
		"email_marketing,u2,IN,,\n" +
		"analytics,u3,maybe,,\n" +
		"analytics,\"u4\nu5\",opted_out,,\n" +
		"analytics,u6,opted_out\n" +
		"analytics,u7,opted_out,2099-01-01T00:00:00Z,\n" +
		"Not A Purpose,u8,opted_out,,\n" +
		"analytics,\"u9, the \"\"ninth\"\"\",out,yesterday,\n" +
		"analytics,u10,out,,x\n"
	rows, err := readAll(t, CSV, in)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		line int
		key  optoutd.Key
		err  string
	}
	wants := []want{
		{2, optoutd.Key{SubjectID: "u1", Purpose: "analytics"}, ""},
		{4, optoutd.Key{SubjectID: "u2", Purpose: "email_marketing"}, ""},
		{5, optoutd.Key{}, `state: "maybe" is not opted_out or opted_in`},
		{6, optoutd.Key{}, "unterminated quoted field"},
		{7, optoutd.Key{}, `bare "`}, // the rest of the field of u4: u5",...
		{8, optoutd.Key{}, "3 fields, the header has 5"},
		{9, optoutd.Key{}, "time: 2099-01-01T00:00:00Z is in the future"},
		{10, optoutd.Key{}, "purpose"},
		{11, optoutd.Key{}, `time: "yesterday" is not an RFC 3339 time`},
		{12, optoutd.Key{SubjectID: "u10", Purpose: "analytics"}, ""},
	}
	if len(rows) != len(wants) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(wants), rows)
	}
	for i, w := range wants {
		r := rows[i]
		if r.Line != w.line {
			t.Errorf("row %d: line %d, want %d", i, r.Line, w.line)
		}
		if w.err != "" {
			if r.Err == nil || !strings.Contains(r.Err.Error(), w.err) {
				t.Errorf("line %d: error %v, want one containing %q", r.Line, r.Err, w.err)
			}
			continue
		}
		if r.Err != nil || r.Set.Key != w.key {
			t.Errorf("line %d: %+v %v, want %v", r.Line, r.Set, r.Err, w.key)
		}
	}
	if s := rows[0].Set; s.Source != "mailchimp" || s.Reason != "observed 2024-03-01T10:00:00Z" || s.State != optoutd.StateOptedOut {
		t.Errorf("line 2: %+v", s)
	}
	if s := rows[1].Set; s.Source != "import:test" || s.State != optoutd.StateOptedIn {
		t.Errorf("line 4: %+v", s)
	}
	if s := rows[9].Set; s.Source != "x" {
		t.Errorf("line 12: %+v", s)
	}
}

// TestCSVHeaderProblemsStopTheFile: a header that cannot be mapped stops
// the import before any line, naming the column.
func TestCSVHeaderProblemsStopTheFile(t *testing.T) {
	for in, want := range map[string]string{
		"subject_id,purpose\nu1,analytics\n":            `no "state" column`,
		"subject_id,purpose,state,colour\n":             `unknown column "colour"`,
		"subject_id,purpose,state,state\n":              `column "state" twice`,
		"identifier,namespace,purpose,state\n":          "identity namespaces are not in this release",
		"\"subject_id,purpose,state\n":                  "header: unterminated quoted field",
		"subject_id,purpose,state,source,reason,time\n": "",
	} {
		_, err := readAll(t, CSV, in)
		var fe *FileError
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", in, err)
		case want != "" && (!errors.As(err, &fe) || fe.Line != 1 || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want line 1: ...%s", in, err, want)
		}
	}
}

// TestJSONLines: objects of strings (expected_version may be a number);
// anything else on a line is a bad line, never a stop.
func TestJSONLines(t *testing.T) {
	in := `{"subject_id":"u1","purpose":"analytics","state":"opted_out","reason":"asked by phone"}` + "\n" +
		`{"subject_id":"u1","purpose":"analytics","state":"opted_in","expected_version":17}` + "\n" +
		`{"subject_id":"u2","purpose":"analytics","state":"opted_in","expected_version":"x"}` + "\n" +
		`{"subject_id":"u3","purpose":"analytics"}` + "\n" +
		`{"subject_id":"u4","purpose":"analytics","state":"out","colour":"red"}` + "\n" +
		`{"subject_id":"u5","purpose":"analytics","state":"out","namespace":"email"}` + "\n" +
		`[1,2]` + "\n" +
		`{"subject_id":"u6","purpose":"analytics","state":"out"} {}` + "\n" +
		`{"subject_id":5,"purpose":"analytics","state":"out"}` + "\n" +
		`null` + "\n" +
		`{"subject_id":"` + strings.Repeat("x", 300) + `","purpose":"analytics","state":"out"}` + "\n" +
		`{"subject_id":"u7","purpose":"analytics","state":"out"}`
	rows, err := readAll(t, JSONL, in)
	if err != nil {
		t.Fatal(err)
	}
	wantErr := []string{"", "", "expected_version", "state: required", `unknown field "colour"`, "identity namespaces",
		"not a JSON object", "more than one JSON value", "subject_id: must be a string", "not a JSON object: null", "subject_id: 300 bytes", ""}
	if len(rows) != len(wantErr) {
		t.Fatalf("%d rows, want %d", len(rows), len(wantErr))
	}
	for i, w := range wantErr {
		r := rows[i]
		if r.Line != i+1 {
			t.Errorf("row %d has line %d", i, r.Line)
		}
		if (w == "") != (r.Err == nil) || (w != "" && !strings.Contains(r.Err.Error(), w)) {
			t.Errorf("line %d: %v, want %q", r.Line, r.Err, w)
		}
	}
	if ev := rows[1].Set.ExpectedVersion; ev == nil || *ev != 17 {
		t.Errorf("line 2: expected version %v", ev)
	}
}

// TestOverlongLineIsSkipped: a line over MaxLineBytes is one bad line and
// the next line is read.
func TestOverlongLineIsSkipped(t *testing.T) {
	in := `{"subject_id":"` + strings.Repeat("x", MaxLineBytes) + `"}` + "\n" + `{"subject_id":"u1","purpose":"analytics","state":"out"}` + "\n"
	rows, err := readAll(t, JSONL, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Err == nil || !strings.Contains(rows[0].Err.Error(), "longer than") || rows[1].Err != nil || rows[1].Line != 2 {
		t.Fatalf("rows: %+v", rows)
	}
}

func TestFormats(t *testing.T) {
	for name, want := range map[string]Format{"a.csv": CSV, "B.JSONL": JSONL, "c.ndjson": JSONL} {
		if f, ok := FormatOf(name); !ok || f != want {
			t.Errorf("FormatOf(%q) = %v %v", name, f, ok)
		}
	}
	if _, ok := FormatOf("x.txt"); ok {
		t.Error("x.txt has a format")
	}
	if _, err := ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("ParseFormat(xml): %v", err)
	}
}

// FuzzReader: whatever the bytes, reading ends (no panic, no endless
// loop), every row is either an error or a write Set's validation accepts,
// and line numbers only grow.
func FuzzReader(f *testing.F) {
	f.Add([]byte("subject_id,purpose,state\nu1,analytics,out\n"), true)
	f.Add([]byte(`{"subject_id":"u1","purpose":"analytics","state":"in","expected_version":3}`), false)
	f.Add([]byte("subject_id,purpose,state,time\n\"u\"\"1\",analytics,out,2024-01-01T00:00:00Z\r\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, csv bool) {
		format := JSONL
		if csv {
			format = CSV
		}
		rd := NewReader(strings.NewReader(string(data)), format, Defaults{Source: "fuzz", Now: now})
		last := 0
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatal("more rows than bytes")
			}
			row, err := rd.Next()
			if err != nil {
				return
			}
			if row.Line <= last {
				t.Fatalf("line %d after %d", row.Line, last)
			}
			last = row.Line
			if row.Err == nil {
				if err := optoutd.ValidateSet(row.Set); err != nil {
					t.Fatalf("line %d passed but Set refuses it: %v", row.Line, err)
				}
			}
		}
	})
}
