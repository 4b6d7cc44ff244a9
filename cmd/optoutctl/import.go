package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/client/importer"
	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// maxShownProblems is how many problems import prints to stderr; --report
// has them all.
const maxShownProblems = 20

// importCmd is "optoutctl import FILE": write a file of records in batches.
func (m *Main) importCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl import", flag.ContinueOnError)
	format := fs.String("format", "", "csv or jsonl (default: from the file's extension)")
	dryRun := fs.Bool("dry-run", false, "ask the cluster what each batch would write or refuse, and write nothing")
	strict := fs.Bool("strict", false, "write nothing if any line is bad, and stop at the first refused write")
	batchSize := fs.Int("batch-size", importer.DefaultBatchSize, "writes per SetBatch, 1..1000")
	concurrency := fs.Int("concurrency", importer.DefaultConcurrency, "batches in flight, 1..64")
	source := fs.String("source", "", `source of lines that give none (default: "import:" and the file's name)`)
	importID := fs.String("import-id", "", "names the import in its batches' idempotency keys (default: the file's SHA-256; for stdin a random one, printed)")
	report := fs.String("report", "", "write every bad line and refused write to this file, as JSON lines")
	progress := fs.String("progress", "auto", "auto (a bar when stderr is a terminal), always or never")
	const usage = "optoutctl import FILE|- [--dry-run] [--strict] [--format csv|jsonl] [--batch-size N] [--concurrency N] [--report F]"
	return &ffcli.Command{
		Name: "import", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "write a CSV or JSON-lines file of opt-outs in batches; run again to resume",
		LongHelp: "Each line is subject_id, purpose, state (opted_out or opted_in) and optionally source, reason, " +
			"time (RFC 3339, kept in the reason) and expected_version; CSV needs a header row naming the columns. " +
			"A bad line or a refused write is reported with its line number and never stops the others (unless --strict). " +
			"Exit status 1 when any line was bad or refused. See docs/import.md.",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 1, usage, a)
			if err != nil {
				return err
			}
			o := importOpts{file: a[0], format: *format, dryRun: *dryRun, strict: *strict, batchSize: *batchSize,
				concurrency: *concurrency, source: *source, importID: *importID, report: *report, progress: *progress}
			return m.runImport(ctx, o)
		},
	}
}

type importOpts struct {
	file, format, source, importID, report, progress string
	dryRun, strict                                   bool
	batchSize, concurrency                           int
}

func (o *importOpts) check() (importer.Format, error) {
	if o.batchSize < 1 || o.batchSize > 1000 {
		return "", &usageError{err: fmt.Errorf("--batch-size: %d is not in 1..1000", o.batchSize)}
	}
	if o.concurrency < 1 || o.concurrency > importer.MaxConcurrency {
		return "", &usageError{err: fmt.Errorf("--concurrency: %d is not in 1..%d", o.concurrency, importer.MaxConcurrency)}
	}
	switch o.progress {
	case "auto", "always", "never":
	default:
		return "", &usageError{err: fmt.Errorf("--progress: %q is not auto, always or never", o.progress)}
	}
	if o.source != "" {
		if err := optoutd.ValidateText("--source", o.source, optoutd.MaxSourceBytes); err != nil {
			return "", &usageError{err: errors.New(optoutd.ErrorMessage(err))}
		}
	}
	if len(o.importID) > 256 {
		return "", &usageError{err: fmt.Errorf("--import-id: %d bytes is over the limit of 256", len(o.importID))}
	}
	if o.format != "" {
		f, err := importer.ParseFormat(o.format)
		if err != nil {
			return "", &usageError{err: fmt.Errorf("--%w", err)}
		}
		return f, nil
	}
	if f, ok := importer.FormatOf(o.file); ok {
		return f, nil
	}
	return "", &usageError{err: fmt.Errorf("--format: needed, since %q does not end in .csv, .jsonl or .ndjson", o.file)}
}

func (m *Main) runImport(ctx context.Context, o importOpts) error {
	format, err := o.check()
	if err != nil {
		return err
	}
	if o.source == "" {
		o.source = "import:" + filepath.Base(o.file)
		if o.file == "-" {
			o.source = "import:stdin"
		}
	}
	open, size, err := m.importInput(o.file)
	if err != nil {
		return err
	}
	// A source given is checked above; the default, from a long file name,
	// is cut to the limit.
	defaults := importer.Defaults{Source: truncateBytes(o.source, optoutd.MaxSourceBytes), Now: time.Now()}
	if o.file == "-" {
		if o.strict {
			return &usageError{err: errors.New("--strict: not with stdin, which can be read only once (give a file)")}
		}
		if o.importID == "" {
			o.importID = "random:" + client.NewIdempotencyKey()[2:]
		}
	}
	if o.importID == "" || o.strict {
		// One pass first: the file's hash names the import, and --strict
		// needs every line good before anything is written.
		id, bad, err := prepass(open, format, defaults, o.strict)
		if err != nil {
			return err
		}
		if o.importID == "" {
			o.importID = id
		}
		if len(bad) > 0 {
			m.showProblems(bad, len(bad), o.report)
			return fmt.Errorf("%d bad lines; nothing was written (--strict)", len(bad))
		}
	}
	var rep *json.Encoder
	if o.report != "" {
		f, err := os.Create(o.report)
		if err != nil {
			return fmt.Errorf("--report: %w", err)
		}
		defer f.Close()
		w := bufio.NewWriter(f)
		defer w.Flush()
		rep = json.NewEncoder(w)
	}
	c, err := m.client()
	if err != nil {
		return fmt.Errorf("--endpoints: %w", err)
	}
	defer c.Close()
	in, err := open()
	if err != nil {
		return err
	}
	defer in.Close()
	bar := m.progressBar(o.progress, size, o.dryRun)
	shown, total := 0, 0
	rd := importer.NewReader(in, format, defaults)
	sum, runErr := importer.Run(ctx, rd, c, importer.Config{
		ImportID: o.importID, BatchSize: o.batchSize, Concurrency: o.concurrency, DryRun: o.dryRun, Strict: o.strict,
		BatchTimeout: m.timeout,
		OnProblem: func(p importer.Problem) {
			total++
			if rep != nil {
				_ = rep.Encode(p)
			}
			if shown < maxShownProblems {
				shown++
				if bar != nil {
					_ = bar.Clear()
				}
				fmt.Fprintln(m.Stderr, problemLine(p))
			}
		},
		OnProgress: func(s importer.Summary) {
			if bar != nil {
				_ = bar.Set64(s.Bytes)
				bar.Describe(fmt.Sprintf("%d written, %d refused, %d bad", s.Written, s.Refused, s.BadLines))
			}
		},
	})
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(m.Stderr)
	}
	if total > shown {
		more := fmt.Sprintf("... and %d more problems", total-shown)
		if o.report == "" {
			more += " (--report FILE lists them all)"
		}
		fmt.Fprintln(m.Stderr, more)
	}
	if err := m.emit(sum); err != nil {
		return err
	}
	switch {
	case runErr != nil && errors.Is(runErr, importer.ErrStopped):
		return fmt.Errorf("stopped at the first refused write (--strict) after %d written", sum.Written)
	case runErr != nil:
		return &writeError{runErr}
	case sum.Problems():
		return fmt.Errorf("%d bad lines and %d refused writes (listed above%s); the other %d lines were %s",
			sum.BadLines, sum.Refused, reportNote(o.report), sum.Written, map[bool]string{false: "written", true: "checked (dry run)"}[o.dryRun])
	}
	return nil
}

func reportNote(report string) string {
	if report == "" {
		return ""
	}
	return " and in " + report
}

func problemLine(p importer.Problem) string {
	if p.Code == "bad_line" {
		return fmt.Sprintf("line %d: %s", p.Line, p.Message)
	}
	return fmt.Sprintf("line %d: %s/%s refused (%s): %s", p.Line, p.SubjectID, p.Purpose, p.Code, p.Message)
}

// importInput returns a function that opens the input (twice for a file:
// the pre-pass and the import) and its size (-1 when unknown).
func (m *Main) importInput(file string) (func() (io.ReadCloser, error), int64, error) {
	if file == "-" {
		used := false
		return func() (io.ReadCloser, error) {
			if used {
				return nil, errors.New("stdin can be read only once")
			}
			used = true
			return io.NopCloser(m.stdin()), nil
		}, -1, nil
	}
	st, err := os.Stat(file)
	if err != nil {
		return nil, 0, fmt.Errorf("FILE: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("FILE: %s is not a regular file", file)
	}
	return func() (io.ReadCloser, error) {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("FILE: %w", err)
		}
		return f, nil
	}, st.Size(), nil
}

// prepass reads the whole input once: its SHA-256 names the import, and
// with strict its bad lines are collected.
func prepass(open func() (io.ReadCloser, error), format importer.Format, d importer.Defaults, strict bool) (string, []importer.Problem, error) {
	in, err := open()
	if err != nil {
		return "", nil, err
	}
	defer in.Close()
	h := sha256.New()
	rd := importer.NewReader(io.TeeReader(in, h), format, d)
	var bad []importer.Problem
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, err
		}
		if strict && row.Err != nil {
			bad = append(bad, importer.Problem{Line: row.Line, Code: "bad_line", Message: row.Err.Error()})
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:32], bad, nil
}

// showProblems prints the first problems and writes all to report.
func (m *Main) showProblems(ps []importer.Problem, total int, report string) {
	for i, p := range ps {
		if i == maxShownProblems {
			fmt.Fprintf(m.Stderr, "... and %d more problems\n", total-i)
			break
		}
		fmt.Fprintln(m.Stderr, problemLine(p))
	}
	if report == "" {
		return
	}
	f, err := os.Create(report)
	if err != nil {
		fmt.Fprintf(m.Stderr, "--report: %v\n", err)
		return
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, p := range ps {
		_ = enc.Encode(p)
	}
}

// progressBar is a bar on stderr when it is a terminal (or always).
func (m *Main) progressBar(mode string, size int64, dryRun bool) *progressbar.ProgressBar {
	if mode == "never" {
		return nil
	}
	if mode == "auto" {
		f, ok := m.Stderr.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return nil
		}
	}
	desc := "importing"
	if dryRun {
		desc = "checking (dry run)"
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(m.Stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
	)
}

// truncateBytes cuts s to at most n bytes (a default source from a long
// file name).
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

var _ importer.Writer = (*client.Client)(nil)
