package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The one output layer of every command (-o/--output). protojson varies its
// whitespace on purpose, from one build to the next, so nothing it writes
// is printed as is: every result is re-encoded by encoding/json, which is
// byte-for-byte stable.
const (
	outPretty = "pretty" // indented JSON, two spaces: the default for one result
	outJSON   = "json"   // one compact JSON object per line: the default for streams, and for jq
	outTable  = "table"  // aligned columns, for people
)

var outputFormats = []string{outPretty, outJSON, outTable}

// checkOutput validates --output.
func checkOutput(format string) error {
	for _, f := range outputFormats {
		if format == f || format == "" {
			return nil
		}
	}
	return fmt.Errorf("--output: %q is not one of %s", format, strings.Join(outputFormats, ", "))
}

// toJSON encodes a proto message (zero values included, enum names,
// uint64 as strings) or any other value encoding/json takes.
func toJSON(v any) ([]byte, error) {
	if m, ok := v.(proto.Message); ok {
		return protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	}
	return json.Marshal(v)
}

// emit prints one result in the chosen format (default: pretty).
func (m *Main) emit(v any) error {
	format := m.output
	if format == "" {
		format = outPretty
	}
	return writeValue(m.Stdout, v, format)
}

// stream prints the items of a stream one at a time (default: json lines);
// a table prints its header before the first item.
type stream struct {
	m      *Main
	header []string
}

func (s *stream) emit(v any) error {
	format := s.m.output
	if format == "" {
		format = outJSON
	}
	if format != outTable {
		return writeValue(s.m.Stdout, v, format)
	}
	raw, err := toJSON(v)
	if err != nil {
		return err
	}
	obj, err := decodeOrdered(raw)
	if err != nil {
		return err
	}
	rows := flatten("", obj)
	if s.header == nil {
		for _, r := range rows {
			s.header = append(s.header, r.k)
		}
		if _, err := fmt.Fprintln(s.m.Stdout, strings.Join(columnNames(s.header), "\t")); err != nil {
			return err
		}
	}
	byKey := map[string]string{}
	for _, r := range rows {
		byKey[r.k] = r.v
	}
	cells := make([]string, len(s.header))
	for i, k := range s.header {
		cells[i] = byKey[k]
	}
	_, err = fmt.Fprintln(s.m.Stdout, strings.Join(cells, "\t"))
	return err
}

func writeValue(w io.Writer, v any, format string) error {
	raw, err := toJSON(v)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	switch format {
	case outJSON:
		err = json.Compact(&buf, raw)
	case outPretty:
		err = json.Indent(&buf, raw, "", "  ")
	case outTable:
		err = writeTable(&buf, raw)
	default:
		err = checkOutput(format)
	}
	if err != nil {
		return err
	}
	if format != outTable {
		buf.WriteByte('\n')
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// ordered is a JSON object with its keys in the order they were written
// (proto field order), which a map would lose.
type ordered []member

type member struct {
	k string
	v any // ordered, []any, or a scalar as text
}

func decodeOrdered(raw []byte) (ordered, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(ordered)
	if !ok {
		return nil, errors.New("output: not a JSON object")
	}
	return obj, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := ordered{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				obj = append(obj, member{k: kt.(string), v: v})
			}
			_, err := dec.Token() // '}'
			return obj, err
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token() // ']'
			return arr, err
		}
		return nil, fmt.Errorf("output: unexpected %v", t)
	case nil:
		return "", nil
	default:
		return fmt.Sprint(t), nil
	}
}

type row struct{ k, v string }

// flatten turns an object into key/value rows, nested objects as dotted
// keys ("record.state") and lists of scalars joined by commas. Lists of
// objects are left out: writeTable prints them as tables of their own.
func flatten(prefix string, obj ordered) []row {
	var out []row
	for _, mb := range obj {
		k := prefix + mb.k
		switch v := mb.v.(type) {
		case ordered:
			out = append(out, flatten(k+".", v)...)
		case []any:
			if len(v) > 0 {
				if _, ok := v[0].(ordered); ok {
					continue
				}
			}
			parts := make([]string, len(v))
			for i, e := range v {
				parts[i] = fmt.Sprint(e)
			}
			out = append(out, row{k, strings.Join(parts, ",")})
		default:
			out = append(out, row{k, fmt.Sprint(v)})
		}
	}
	return out
}

// writeTable prints an object's fields as FIELD VALUE rows, then each list
// of objects in it (members, purposes, history entries) as a table with a
// column per field.
func writeTable(w io.Writer, raw []byte) error {
	obj, err := decodeOrdered(raw)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rows := flatten("", obj)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r.k, r.v)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	first := len(rows) == 0
	for _, mb := range obj {
		list, ok := mb.v.([]any)
		if !ok || len(list) == 0 {
			continue
		}
		if _, ok := list[0].(ordered); !ok {
			continue
		}
		if !first {
			fmt.Fprintln(w)
		}
		first = false
		fmt.Fprintf(w, "%s:\n", mb.k)
		writeList(tw, list)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func writeList(tw *tabwriter.Writer, list []any) {
	var cols []string
	seen := map[string]bool{}
	var all [][]row
	for _, e := range list {
		o, _ := e.(ordered)
		rows := flatten("", o)
		all = append(all, rows)
		for _, r := range rows {
			if !seen[r.k] {
				seen[r.k] = true
				cols = append(cols, r.k)
			}
		}
	}
	fmt.Fprintln(tw, strings.Join(columnNames(cols), "\t"))
	for _, rows := range all {
		byKey := map[string]string{}
		for _, r := range rows {
			byKey[r.k] = r.v
		}
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = byKey[c]
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
}

// columnNames turns field names into headers: raftAddress is RAFT_ADDRESS.
func columnNames(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		var b strings.Builder
		for j, r := range k {
			if unicode.IsUpper(r) && j > 0 {
				b.WriteByte('_')
			}
			if r == '.' {
				r = '_'
			}
			b.WriteRune(unicode.ToUpper(r))
		}
		out[i] = b.String()
	}
	return out
}
