package importer

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/optoutd/optoutd"
)

// MaxLineBytes bounds one line of an import file. A longer line is
// reported as bad and skipped; it never stops the import.
const MaxLineBytes = 16 << 10

// Format is a file format.
type Format string

// The formats.
const (
	CSV   Format = "csv"
	JSONL Format = "jsonl"
)

// ParseFormat accepts "csv" and "jsonl" (or "ndjson").
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "csv":
		return CSV, nil
	case "jsonl", "ndjson":
		return JSONL, nil
	}
	return "", fmt.Errorf("format: %q is not csv or jsonl", s)
}

// FormatOf guesses the format from a file name's extension.
func FormatOf(name string) (Format, bool) {
	switch {
	case strings.HasSuffix(strings.ToLower(name), ".csv"):
		return CSV, true
	case strings.HasSuffix(strings.ToLower(name), ".jsonl"), strings.HasSuffix(strings.ToLower(name), ".ndjson"):
		return JSONL, true
	}
	return "", false
}

// Columns are the fields a line may have. subject_id, purpose and state are
// required.
var Columns = []string{"subject_id", "purpose", "state", "source", "reason", "time", "expected_version"}

// notYet are columns of the import format that this release cannot take
// yet, with the reason the error gives.
var notYet = map[string]string{
	"identifier": "identity namespaces are not in this release; give the subject's subject_id",
	"namespace":  "identity namespaces are not in this release; give the subject's subject_id",
}

// Row is one line: its number (1-based, counting the header) and the write
// it asks for, or the problem with it.
type Row struct {
	Line int
	Set  optoutd.SetRequest
	// Err is set for a bad line; Set is then zero.
	Err error
}

// Defaults fill a line's optional fields.
type Defaults struct {
	// Source is used when a line gives none.
	Source string
	// Now is the reference for the time column's "not in the future" check.
	Now time.Time
}

// FileError is a problem with the file as a whole (its header, or reading
// it): nothing after it can be read.
type FileError struct {
	Line int
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// Reader reads rows from an import file. It holds one line at a time.
type Reader struct {
	r        *bufio.Reader
	format   Format
	defaults Defaults
	line     int
	header   []string // CSV only
	bytes    atomic.Int64
}

// BytesRead is the bytes read so far (for progress); safe to call from
// any goroutine.
func (rd *Reader) BytesRead() int64 { return rd.bytes.Load() }

// NewReader reads a file of the given format. For CSV the first line is
// the header, which names the columns in any order.
func NewReader(r io.Reader, format Format, d Defaults) *Reader {
	if d.Now.IsZero() {
		d.Now = time.Now()
	}
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), format: format, defaults: d}
}

// Next returns the next row, or io.EOF at the end. Blank lines are
// skipped. A bad line is a Row with Err set, and reading goes on; an error
// returned (a *FileError, or a read error) ends the file.
func (rd *Reader) Next() (Row, error) {
	for {
		raw, tooLong, err := rd.readLine()
		if err != nil {
			return Row{}, err
		}
		if tooLong {
			return Row{Line: rd.line, Err: fmt.Errorf("longer than %d bytes", MaxLineBytes)}, nil
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		if rd.format == CSV && rd.header == nil {
			if err := rd.readHeader(raw); err != nil {
				return Row{}, &FileError{Line: rd.line, Err: err}
			}
			continue
		}
		row := Row{Line: rd.line}
		fields, err := rd.fields(raw)
		if err == nil {
			row.Set, err = toSet(fields, rd.defaults)
		}
		row.Err = err
		return row, nil
	}
}

// readLine reads one line without its line ending. A line over
// MaxLineBytes is consumed and reported as too long. At the end of the
// input it returns io.EOF.
func (rd *Reader) readLine() (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := rd.r.ReadSlice('\n')
		rd.bytes.Add(int64(len(chunk)))
		if len(buf)+len(chunk) > MaxLineBytes+2 {
			tooLong = true
		} else {
			buf = append(buf, chunk...)
		}
		switch {
		case err == nil:
			rd.line++
			return bytes.TrimRight(buf, "\r\n"), tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(buf) == 0 && !tooLong {
				return nil, false, io.EOF
			}
			rd.line++
			return bytes.TrimRight(buf, "\r\n"), tooLong, nil
		default:
			return nil, false, err
		}
	}
}

func (rd *Reader) readHeader(raw []byte) error {
	raw = bytes.TrimPrefix(raw, []byte("\ufeff")) // a spreadsheet's byte-order mark
	cols, err := csvFields(raw)
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	seen := map[string]bool{}
	for i, c := range cols {
		c = strings.ToLower(strings.TrimSpace(c))
		cols[i] = c
		if why, ok := notYet[c]; ok {
			return fmt.Errorf("header: column %q: %s", c, why)
		}
		if !slices.Contains(Columns, c) {
			return fmt.Errorf("header: unknown column %q (the columns are %s)", c, strings.Join(Columns, ", "))
		}
		if seen[c] {
			return fmt.Errorf("header: column %q twice", c)
		}
		seen[c] = true
	}
	for _, req := range Columns[:3] {
		if !seen[req] {
			return fmt.Errorf("header: no %q column (required: subject_id, purpose, state)", req)
		}
	}
	rd.header = cols
	return nil
}

// fields maps a line to column → value.
func (rd *Reader) fields(raw []byte) (map[string]string, error) {
	if rd.format == JSONL {
		return jsonFields(raw)
	}
	vals, err := csvFields(raw)
	if err != nil {
		return nil, err
	}
	if len(vals) != len(rd.header) {
		return nil, fmt.Errorf("%d fields, the header has %d", len(vals), len(rd.header))
	}
	out := make(map[string]string, len(vals))
	for i, v := range vals {
		out[rd.header[i]] = v
	}
	return out, nil
}

// csvFields parses one physical line as CSV. A quoted field cannot span
// lines: every line is read on its own, so a bad one cannot swallow the
// lines after it.
func csvFields(raw []byte) ([]string, error) {
	r := csv.NewReader(bytes.NewReader(raw))
	r.FieldsPerRecord = -1
	r.LazyQuotes = false
	vals, err := r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if errors.Is(pe.Err, csv.ErrQuote) {
				return nil, errors.New("unterminated quoted field (a field cannot contain a line break)")
			}
			return nil, fmt.Errorf("column %d: %w", pe.Column, pe.Err)
		}
		return nil, err
	}
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		return nil, errors.New("a quoted field contains a line break")
	}
	return vals, nil
}

// jsonFields parses one JSON object whose values are strings (or, for
// expected_version, a number).
func jsonFields(raw []byte) (map[string]string, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value on the line")
	}
	if obj == nil {
		return nil, errors.New("not a JSON object: null")
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		if why, ok := notYet[k]; ok {
			return nil, fmt.Errorf("%s: %s", k, why)
		}
		if !slices.Contains(Columns, k) {
			return nil, fmt.Errorf("unknown field %q (the fields are %s)", k, strings.Join(Columns, ", "))
		}
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			out[k] = s
			continue
		}
		var n json.Number
		if k == "expected_version" {
			if err := json.Unmarshal(v, &n); err == nil {
				out[k] = n.String()
				continue
			}
		}
		return nil, fmt.Errorf("%s: must be a string", k)
	}
	return out, nil
}

// maxClockSkew is how far in the future a line's time may be.
const maxClockSkew = 5 * time.Minute

// toSet builds and validates the write of one line.
func toSet(f map[string]string, d Defaults) (optoutd.SetRequest, error) {
	s := optoutd.SetRequest{
		Key:    optoutd.Key{SubjectID: f["subject_id"], Purpose: strings.TrimSpace(f["purpose"])},
		Source: f["source"],
		Reason: f["reason"],
	}
	if s.Key.SubjectID == "" {
		return optoutd.SetRequest{}, errors.New("subject_id: required")
	}
	if s.Key.Purpose == "" {
		return optoutd.SetRequest{}, errors.New("purpose: required")
	}
	st, err := parseState(f["state"])
	if err != nil {
		return optoutd.SetRequest{}, err
	}
	s.State = st
	if s.Source == "" {
		s.Source = d.Source
	}
	if t := strings.TrimSpace(f["time"]); t != "" {
		at, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return optoutd.SetRequest{}, fmt.Errorf("time: %q is not an RFC 3339 time (e.g. 2024-03-01T12:00:00Z)", truncate(t))
		}
		if at.After(d.Now.Add(maxClockSkew)) {
			return optoutd.SetRequest{}, fmt.Errorf("time: %s is in the future", t)
		}
		// The record's own time is the leader's; the time the opt-out was
		// observed elsewhere is kept in its reason (docs/import.md).
		note := "observed " + at.UTC().Format(time.RFC3339)
		if s.Reason == "" {
			s.Reason = note
		} else {
			s.Reason += " (" + note + ")"
		}
		if len(s.Reason) > optoutd.MaxReasonBytes {
			return optoutd.SetRequest{}, fmt.Errorf("reason and time: %d bytes together, over reason's limit of %d", len(s.Reason), optoutd.MaxReasonBytes)
		}
	}
	if v := strings.TrimSpace(f["expected_version"]); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return optoutd.SetRequest{}, fmt.Errorf("expected_version: %q is not a non-negative integer", truncate(v))
		}
		s.ExpectedVersion = &n
	}
	if err := optoutd.ValidateSet(s); err != nil {
		return optoutd.SetRequest{}, errors.New(optoutd.ErrorMessage(err))
	}
	return s, nil
}

func parseState(v string) (optoutd.State, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "opted_out", "out", "state_opted_out":
		return optoutd.StateOptedOut, nil
	case "opted_in", "in", "state_opted_in":
		return optoutd.StateOptedIn, nil
	case "":
		return 0, errors.New("state: required (opted_out or opted_in)")
	}
	return 0, fmt.Errorf("state: %q is not opted_out or opted_in", truncate(v))
}

// truncate shortens a value quoted in an error.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
