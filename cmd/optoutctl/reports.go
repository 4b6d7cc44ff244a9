package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxReportLine bounds one line of a --file of reports (a report with a
// receipt is well under 2 KiB).
const maxReportLine = 16 << 10

// reportCmd is "optoutctl report": tell the cluster what a service
// processed, one report from the arguments or up to 1000 from a file of
// JSON lines, and print the verdicts. Like check it exits 0 whatever the
// verdicts say; violations are in the output (and in violations list).
func (m *Main) reportCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl report", flag.ContinueOnError)
	service := fs.String("service", "", "the service that processed the events (required; [a-z0-9_.-]{1,64})")
	version := fs.String("version", "", "the read index the event was processed at, e.g. its fence's (not with --at)")
	at := fs.String("at", "", "when the event was processed, RFC 3339 (not with --version; neither: now)")
	rcpt := fs.String("receipt", "", "the receipt the event carried (none: the service did not ask)")
	file := fs.String("file", "", `JSON lines of {"subject_id","purpose","processed_version"|"processed_at","receipt"}, at most 1000; "-" is stdin`)
	const usage = "optoutctl report --service SVC SUBJECT PURPOSE [--version N | --at T] [--receipt R]\n" +
		"  optoutctl report --service SVC --file F"
	return &ffcli.Command{
		Name: "report", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "report what a service processed; each report is judged and its verdict printed",
		Exec: func(ctx context.Context, a []string) error {
			n := 2
			if *file != "" {
				n = 0
			}
			a, err := positional(fs, n, usage, a)
			if err != nil {
				return err
			}
			if err := needService(*service); err != nil {
				return err
			}
			var reports []*optoutv1.ProcessingReport
			if *file != "" {
				for _, f := range []struct{ name, v string }{{"--version", *version}, {"--at", *at}, {"--receipt", *rcpt}} {
					if f.v != "" {
						return fmt.Errorf("%s: not with --file (each line gives its own)", f.name)
					}
				}
				if reports, err = readReportFile(*file, m.stdin()); err != nil {
					return err
				}
			} else {
				r, err := oneReport(a[0], a[1], *version, *at, *rcpt, time.Now())
				if err != nil {
					return err
				}
				reports = []*optoutv1.ProcessingReport{r}
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				r, err := c.ReportProcessing(ctx, *service, reports)
				if err != nil {
					return nil, &writeError{err}
				}
				return r, nil
			})
		},
	}
}

// stdin is where --file - reads.
func (m *Main) stdin() io.Reader {
	if m.Stdin != nil {
		return m.Stdin
	}
	return os.Stdin
}

// oneReport builds the report of the arguments.
func oneReport(subject, purpose, version, at, rcpt string, now time.Time) (*optoutv1.ProcessingReport, error) {
	if err := checkSubject("SUBJECT", subject, true); err != nil {
		return nil, err
	}
	if optoutd.ValidatePurpose(purpose) != nil {
		return nil, fmt.Errorf("PURPOSE: %q must match [a-z0-9_.-]{1,64}", purpose)
	}
	if err := checkReceipt("--receipt", rcpt); err != nil {
		return nil, err
	}
	r := &optoutv1.ProcessingReport{SubjectId: subject, Purpose: purpose, Receipt: rcpt}
	switch {
	case version != "" && at != "":
		return nil, errors.New("--version and --at: give one, not both")
	case version != "":
		v, err := strconv.ParseUint(version, 10, 64)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("--version: %q is not a positive integer", version)
		}
		r.ProcessedVersion = v
	case at != "":
		t, err := parseTime("--at", at)
		if err != nil {
			return nil, err
		}
		r.ProcessedAt = timestamppb.New(t)
	default:
		r.ProcessedAt = timestamppb.New(now)
	}
	return r, nil
}

// readReportFile reads JSON lines of reports from path ("-": stdin).
// Every line is checked before anything is sent; an error names the line.
func readReportFile(path string, stdin io.Reader) ([]*optoutv1.ProcessingReport, error) {
	in := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		defer func() { _ = f.Close() }()
		in = f
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), maxReportLine)
	var out []*optoutv1.ProcessingReport
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if len(out) == optoutd.MaxReportBatch {
			return nil, fmt.Errorf("--file: line %d: more than %d reports; one call takes at most %d, split the file", line, optoutd.MaxReportBatch, optoutd.MaxReportBatch)
		}
		r, err := reportLine(b)
		if err != nil {
			return nil, fmt.Errorf("--file: line %d: %w", line, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("--file: line %d is over the limit of %d bytes", line+1, maxReportLine)
		}
		return nil, fmt.Errorf("--file: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--file: %s holds no reports", path)
	}
	return out, nil
}

// reportLine decodes one line: the wire's JSON of a ProcessingReport
// (snake_case or camelCase names), with no unknown fields.
func reportLine(b []byte) (*optoutv1.ProcessingReport, error) {
	r := &optoutv1.ProcessingReport{}
	if err := protojson.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("not a report object: %w", err)
	}
	if err := checkSubject("subject_id", r.SubjectId, true); err != nil {
		return nil, err
	}
	if optoutd.ValidatePurpose(r.Purpose) != nil {
		return nil, fmt.Errorf("purpose: %q must match [a-z0-9_.-]{1,64}", r.Purpose)
	}
	if err := checkReceipt("receipt", r.Receipt); err != nil {
		return nil, err
	}
	switch {
	case r.ProcessedVersion != 0 && r.ProcessedAt != nil:
		return nil, errors.New("processed_version and processed_at: give one, not both")
	case r.ProcessedVersion == 0 && r.ProcessedAt == nil:
		return nil, errors.New("processed_version or processed_at: one is required")
	}
	return r, nil
}

// violationsCmd is "optoutctl violations ...": what the reports found.
func (m *Main) violationsCmd() *ffcli.Command {
	listFS := flag.NewFlagSet("optoutctl violations list", flag.ContinueOnError)
	service := listFS.String("service", "", "only this service")
	purpose := listFS.String("purpose", "", "only this purpose")
	subject := listFS.String("subject", "", "only this subject (hashed on the server; violations never hold the id)")
	limit := listFS.Uint("limit", 0, "at most this many (1..1000; default 100)")
	before := listFS.Uint64("before-id", 0, "only violations older than this id (the next page)")
	const listUsage = "optoutctl violations list [--service S] [--purpose P] [--subject S] [--limit N] [--before-id ID]"
	list := &ffcli.Command{
		Name: "list", ShortUsage: listUsage, FlagSet: listFS, ShortHelp: "stored violations with their evidence, newest first (auditor)",
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(listFS, 0, listUsage, a); err != nil {
				return err
			}
			if err := optionalService(*service); err != nil {
				return err
			}
			if err := optionalPurpose(*purpose); err != nil {
				return err
			}
			if err := checkSubject("--subject", *subject, false); err != nil {
				return err
			}
			n, err := parseLimit(*limit)
			if err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.ListViolations(ctx, &optoutv1.ListViolationsRequest{Service: *service, Purpose: *purpose, SubjectId: *subject,
					Limit: n, BeforeId: *before})
			})
		},
	}
	scoreFS := flag.NewFlagSet("optoutctl violations score", flag.ContinueOnError)
	scoreService := scoreFS.String("service", "", "only this service")
	window := scoreFS.String("window", "24h", "whole hours from 1h to 720h")
	const scoreUsage = "optoutctl violations score [--service S] [--window 24h]"
	score := &ffcli.Command{
		Name: "score", ShortUsage: scoreUsage, FlagSet: scoreFS, ShortHelp: "each service's violations per 10,000 reports over a window",
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(scoreFS, 0, scoreUsage, a); err != nil {
				return err
			}
			if err := optionalService(*scoreService); err != nil {
				return err
			}
			w, err := parseDuration("--window", *window, time.Hour, optoutd.MaxScoreWindow)
			if err != nil {
				return err
			}
			if w%time.Hour != 0 {
				return fmt.Errorf("--window: %v is not whole hours", w)
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.ServiceScores(ctx, *scoreService, w)
			})
		},
	}
	return group("violations", "optoutctl violations <list|score>", "what the processing reports found", list, score)
}
