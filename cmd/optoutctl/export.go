package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/encoding/protojson"
)

// Export formats.
const (
	exportJSONL   = "jsonl"
	exportCSV     = "csv"
	exportConsent = "consent-record"
)

// exportCmd is "optoutctl export records|history": stream the current
// state or the whole history to a file, a page at a time.
func (m *Main) exportCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl export", flag.ContinueOnError)
	format := fs.String("format", exportJSONL, "jsonl, csv, or (records only) consent-record: one JSON consent record per line, shaped after ISO/IEC TS 27560 and Kantara Consent Receipt v1.1")
	purpose := fs.String("purpose", "", "records: only this purpose")
	after := fs.Uint64("after-version", 0, "history: only entries with a version above this")
	out := fs.String("out", "-", `the file to write ("-": stdout)`)
	pageSize := fs.Uint("page-size", 1000, "records or entries per request, 1..1000")
	controller := fs.String("controller", "", "consent-record: the data controller's name (piiControllers)")
	policyURL := fs.String("policy-url", "", "consent-record: the privacy notice's URL (policyUrl)")
	jurisdiction := fs.String("jurisdiction", "", "consent-record: the jurisdiction, e.g. EU or US-CA")
	const usage = "optoutctl export records|history [--format jsonl|csv|consent-record] [--purpose P] [--after-version N] [--out F]"
	return &ffcli.Command{
		Name: "export", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "write every current record, or the whole history, as JSON lines, CSV or consent records",
		LongHelp: "Streams a page at a time (constant memory). Each page is read linearizably on its own, so a record " +
			"changed during the export appears with the state its page saw; for one point in time, restore a " +
			"snapshot into a single-node cluster and export from that. A summary goes to stderr. See docs/import.md.",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 1, usage, a)
			if err != nil {
				return err
			}
			o := exportOpts{what: a[0], format: *format, purpose: *purpose, after: *after, out: *out, pageSize: *pageSize,
				controller: *controller, policyURL: *policyURL, jurisdiction: *jurisdiction}
			if err := o.check(); err != nil {
				return err
			}
			return m.runExport(ctx, o)
		},
	}
}

type exportOpts struct {
	what, format, purpose, out, controller, policyURL, jurisdiction string
	after                                                           uint64
	pageSize                                                        uint
}

func (o exportOpts) check() error {
	switch {
	case o.what != "records" && o.what != "history":
		return &usageError{err: fmt.Errorf("export: %q is not records or history", o.what)}
	case o.format != exportJSONL && o.format != exportCSV && o.format != exportConsent:
		return &usageError{err: fmt.Errorf("--format: %q is not jsonl, csv or consent-record", o.format)}
	case o.format == exportConsent && o.what != "records":
		return &usageError{err: fmt.Errorf("--format: consent-record is for records, not history")}
	case o.pageSize < 1 || o.pageSize > 1000:
		return &usageError{err: fmt.Errorf("--page-size: %d is not in 1..1000", o.pageSize)}
	case o.what == "records" && o.after != 0:
		return &usageError{err: fmt.Errorf("--after-version: for history, not records")}
	case o.what == "history" && o.purpose != "":
		return &usageError{err: fmt.Errorf("--purpose: for records, not history")}
	}
	for _, f := range []struct{ name, v string }{{"--controller", o.controller}, {"--policy-url", o.policyURL}, {"--jurisdiction", o.jurisdiction}} {
		if f.v != "" && o.format != exportConsent {
			return &usageError{err: fmt.Errorf("%s: only with --format consent-record", f.name)}
		}
		if len(f.v) > 512 {
			return &usageError{err: fmt.Errorf("%s: %d bytes is over the limit of 512", f.name, len(f.v))}
		}
	}
	return nil
}

// exportSummary goes to stderr at the end.
type exportSummary struct {
	What     string `json:"what"`
	Format   string `json:"format"`
	Exported int    `json:"exported"`
	Pages    int    `json:"pages"`
	// FirstReadIndex and LastReadIndex bound the read indexes of the pages.
	FirstReadIndex uint64 `json:"first_read_index"`
	LastReadIndex  uint64 `json:"last_read_index"`
	// CompactedThrough (history): retention removed the history at and
	// below this version before the export.
	CompactedThrough uint64  `json:"compacted_through,omitempty"`
	Seconds          float64 `json:"seconds"`
}

func (m *Main) runExport(ctx context.Context, o exportOpts) (err error) {
	w := m.Stdout
	if o.out != "-" {
		f, err := os.Create(o.out)
		if err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("--out: %w", cerr)
			}
		}()
		w = f
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	c, err := m.client()
	if err != nil {
		return fmt.Errorf("--endpoints: %w", err)
	}
	defer c.Close()
	sum := exportSummary{What: o.what, Format: o.format}
	start := time.Now()
	enc := newExportEncoder(bw, o)
	if o.what == "records" {
		err = m.exportRecords(ctx, c, o, enc, &sum)
	} else {
		err = m.exportHistory(ctx, c, o, enc, &sum)
	}
	if err == nil {
		err = enc.flush()
	}
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("--out: %w", ferr)
	}
	sum.Seconds = time.Since(start).Seconds()
	b, _ := json.Marshal(sum)
	fmt.Fprintln(m.Stderr, string(b))
	return err
}

func (m *Main) page(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.timeout)
}

func (m *Main) exportRecords(ctx context.Context, c *client.Client, o exportOpts, enc *exportEncoder, sum *exportSummary) error {
	tok := ""
	for {
		pctx, cancel := m.page(ctx)
		r, err := c.ListRecords(pctx, &optoutv1.ListRecordsRequest{Purpose: o.purpose, PageSize: uint32(o.pageSize), PageToken: tok})
		cancel()
		if err != nil {
			return fmt.Errorf("after %d records: %w", sum.Exported, err)
		}
		sum.note(r.ReadIndex)
		for _, rec := range r.Records {
			if err := enc.record(rec); err != nil {
				return err
			}
			sum.Exported++
		}
		if tok = r.NextPageToken; tok == "" {
			return nil
		}
	}
}

func (m *Main) exportHistory(ctx context.Context, c *client.Client, o exportOpts, enc *exportEncoder, sum *exportSummary) error {
	after := o.after
	for {
		pctx, cancel := m.page(ctx)
		r, err := c.ListChanges(pctx, &optoutv1.ListChangesRequest{AfterVersion: after, PageSize: uint32(o.pageSize)})
		cancel()
		if err != nil {
			return fmt.Errorf("after %d entries: %w", sum.Exported, err)
		}
		sum.note(r.ReadIndex)
		sum.CompactedThrough = r.CompactedThrough
		for _, e := range r.Entries {
			if err := enc.entry(e); err != nil {
				return err
			}
			sum.Exported++
		}
		if r.NextAfterVersion == 0 {
			return nil
		}
		after = r.NextAfterVersion
	}
}

func (s *exportSummary) note(idx uint64) {
	s.Pages++
	if s.FirstReadIndex == 0 {
		s.FirstReadIndex = idx
	}
	s.LastReadIndex = idx
}

// exportEncoder writes records or entries in one format.
type exportEncoder struct {
	w      io.Writer
	csv    *csv.Writer
	o      exportOpts
	header bool
}

func newExportEncoder(w io.Writer, o exportOpts) *exportEncoder {
	e := &exportEncoder{w: w, o: o}
	if o.format == exportCSV {
		e.csv = csv.NewWriter(w)
	}
	return e
}

func (e *exportEncoder) flush() error {
	if e.csv != nil {
		e.csv.Flush()
		return e.csv.Error()
	}
	return nil
}

var compactJSON = protojson.MarshalOptions{UseProtoNames: true}

func (e *exportEncoder) line(b []byte) error {
	if _, err := e.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

func (e *exportEncoder) row(header, vals []string) error {
	if !e.header {
		e.header = true
		if err := e.csv.Write(header); err != nil {
			return err
		}
	}
	return e.csv.Write(vals)
}

var recordColumns = []string{"subject_id", "purpose", "state", "version", "updated_at", "source", "reason"}

func (e *exportEncoder) record(r *optoutv1.Record) error {
	switch e.o.format {
	case exportCSV:
		return e.row(recordColumns, []string{r.SubjectId, r.Purpose, stateWord(r.State), uitoa(r.Version),
			r.UpdatedAt.AsTime().UTC().Format(time.RFC3339Nano), r.Source, r.Reason})
	case exportConsent:
		b, err := json.Marshal(consentRecordOf(r, e.o))
		if err != nil {
			return err
		}
		return e.line(b)
	}
	b, err := compactJSON.Marshal(r)
	if err != nil {
		return err
	}
	return e.line(b)
}

var historyColumns = []string{"version", "seq", "time", "kind", "subject_id", "erased", "purpose", "old_state", "new_state",
	"old_version", "source", "reason", "caller", "override_id", "prev_hash", "hash"}

func (e *exportEncoder) entry(a *optoutv1.AuditEntry) error {
	if e.o.format == exportCSV {
		return e.row(historyColumns, []string{uitoa(a.Version), strconv.FormatUint(uint64(a.Seq), 10), a.Time.AsTime().UTC().Format(time.RFC3339Nano),
			a.Kind.String(), a.SubjectId, strconv.FormatBool(a.Erased), a.Purpose, stateWord(a.OldState), stateWord(a.NewState),
			uitoa(a.OldVersion), a.Source, a.Reason, a.Caller, uitoa(a.OverrideId), hex.EncodeToString(a.PrevHash), hex.EncodeToString(a.Hash)})
	}
	b, err := compactJSON.Marshal(a)
	if err != nil {
		return err
	}
	return e.line(b)
}

func uitoa(v uint64) string { return strconv.FormatUint(v, 10) }

// stateWord is a state as the import file writes it (the domain's names;
// empty for no state).
func stateWord(s optoutv1.State) string {
	if s == optoutv1.State_STATE_UNSPECIFIED {
		return ""
	}
	return optoutd.State(s).String()
}
