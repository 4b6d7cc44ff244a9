package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TestViolationReportingEndToEnd: a service reports what it processed;
// against three real processes each kind of violation is found with its
// evidence and stored without the subject's id, clean reports produce
// none, bad reports are refused naming the field and change nothing, and
// the service's score is in the API and in every node's /metrics.
func TestViolationReportingEndToEnd(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := pc.all()
	const purpose = "analytics"
	gate := func(subject string) *optoutv1.CheckResponse {
		t.Helper()
		d, err := c.Gate(ctx, subject, purpose, client.WithReceipt())
		if err != nil {
			t.Fatal(err)
		}
		return d.Check
	}
	atVersion := func(subject string, v uint64, receipt string) *optoutv1.ProcessingReport {
		return &optoutv1.ProcessingReport{SubjectId: subject, Purpose: purpose, ProcessedVersion: v, Receipt: receipt}
	}

	clean := gate("rep-clean")
	late := gate("rep-late") // allowed now, opted out before processing
	lateOut := mustSet(t, c, "rep-late", purpose, optoutv1.State_STATE_OPTED_OUT, nil)
	outAt := mustSet(t, c, "rep-out", purpose, optoutv1.State_STATE_OPTED_OUT, nil)
	flipOut := mustSet(t, c, "rep-flip", purpose, optoutv1.State_STATE_OPTED_OUT, nil)
	denyReceipt := gate("rep-flip")
	flipIn := mustSet(t, c, "rep-flip", purpose, optoutv1.State_STATE_OPTED_IN, &flipOut.Version)
	forged := resign(t, clean.Receipt, 1, nil, func(b *optoutv1.DecisionReceipt) { b.ReadIndex++ })
	now := flipIn.Version

	reports := []*optoutv1.ProcessingReport{
		atVersion("rep-clean", clean.ReadIndex, clean.Receipt),
		atVersion("rep-late", lateOut.Version, late.Receipt),
		atVersion("rep-out", now, ""),
		atVersion("rep-clean", now, ""),
		atVersion("rep-clean", now, forged),
		atVersion("rep-other", now, clean.Receipt),
		atVersion("rep-flip", now, denyReceipt.Receipt),
		{SubjectId: "rep-out", Purpose: purpose, ProcessedAt: timestamppb.Now()},
		atVersion("rep-late", late.ReadIndex, late.Receipt), // processed before the opt-out: clean
	}
	want := []optoutv1.ViolationKind{
		optoutv1.ViolationKind_VIOLATION_KIND_UNSPECIFIED,
		optoutv1.ViolationKind_VIOLATION_KIND_RECEIPT_BEFORE_OPT_OUT,
		optoutv1.ViolationKind_VIOLATION_KIND_PROCESSED_WHILE_OPTED_OUT,
		optoutv1.ViolationKind_VIOLATION_KIND_NO_RECEIPT,
		optoutv1.ViolationKind_VIOLATION_KIND_INVALID_RECEIPT,
		optoutv1.ViolationKind_VIOLATION_KIND_INVALID_RECEIPT,
		optoutv1.ViolationKind_VIOLATION_KIND_DENIED_RECEIPT,
		optoutv1.ViolationKind_VIOLATION_KIND_PROCESSED_WHILE_OPTED_OUT,
		optoutv1.ViolationKind_VIOLATION_KIND_UNSPECIFIED,
	}

	t.Run("bad reports are refused and change nothing", func(t *testing.T) {
		many := make([]*optoutv1.ProcessingReport, 1001)
		for i := range many {
			many[i] = atVersion("rep-clean", 1, "")
		}
		cases := []struct {
			name    string
			service string
			reports []*optoutv1.ProcessingReport
			msg     string
		}{
			{"undefined purpose", "mailer", []*optoutv1.ProcessingReport{{SubjectId: "rep-clean", Purpose: "no_such_purpose", ProcessedVersion: 1}},
				`reports[0].purpose: "no_such_purpose" is not a defined purpose`},
			{"no point", "mailer", []*optoutv1.ProcessingReport{{SubjectId: "rep-clean", Purpose: purpose}}, "reports[0].processed_version or processed_at: one is required"},
			{"both points", "mailer", []*optoutv1.ProcessingReport{{SubjectId: "rep-clean", Purpose: purpose, ProcessedVersion: 1, ProcessedAt: timestamppb.Now()}},
				"reports[0].give processed_version or processed_at, not both"},
			{"a future version", "mailer", []*optoutv1.ProcessingReport{atVersion("rep-clean", 1<<40, "")}, "is after the cluster's commit index"},
			{"a future time", "mailer", []*optoutv1.ProcessingReport{{SubjectId: "rep-clean", Purpose: purpose, ProcessedAt: timestamppb.New(time.Now().Add(time.Hour))}},
				"reports[0].processed_at:"},
			{"no subject", "mailer", []*optoutv1.ProcessingReport{atVersion("", 1, "")}, "reports[0].subject"},
			{"too many", "mailer", many, "reports: 1001 entries, must be 1..1000"},
			{"none", "mailer", nil, "reports: 0 entries"},
			{"bad service", "Mail Er", reports[:1], "service:"},
		}
		for _, tc := range cases {
			_, err := c.ReportProcessing(ctx, tc.service, tc.reports)
			if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s: got %v, want invalid_argument mentioning %q", tc.name, err, tc.msg)
			}
		}
		if s, err := c.ServiceScores(ctx, "", 0); err != nil || len(s.Scores) != 0 {
			t.Fatalf("refused reports were counted: %v, %v", s, err)
		}
	})

	res, err := c.ReportProcessing(ctx, "mailer", reports)
	if err != nil {
		t.Fatal(err)
	}
	violations := 0
	for i, v := range res.Verdicts {
		if v.Kind != want[i] {
			t.Errorf("report %d: %v (%s), want %v", i, v.Kind, v.Evidence, want[i])
		}
		if v.Kind != 0 {
			violations++
			if v.ViolationId == 0 || v.Evidence == "" {
				t.Errorf("report %d: violation without id or evidence: %v", i, v)
			}
		}
	}
	if !strings.Contains(res.Verdicts[1].Evidence, fmt.Sprintf("by version %d", lateOut.Version)) ||
		!strings.Contains(res.Verdicts[2].Evidence, fmt.Sprintf("by version %d", outAt.Version)) {
		t.Errorf("evidence lacks the opt-out versions: %q / %q", res.Verdicts[1].Evidence, res.Verdicts[2].Evidence)
	}
	if _, err := c.ReportProcessing(ctx, "batcher", []*optoutv1.ProcessingReport{atVersion("rep-clean", clean.ReadIndex, clean.Receipt)}); err != nil {
		t.Fatal(err)
	}

	list, err := c.ListViolations(ctx, &optoutv1.ListViolationsRequest{Service: "mailer"})
	if err != nil || len(list.Violations) != violations {
		t.Fatalf("violations of mailer: %v, %v; want %d", list, err, violations)
	}
	for _, v := range list.Violations {
		if bytes.Contains(v.SubjectHash, []byte("rep-")) || len(v.SubjectHash) != 16 || v.ReportVersion != res.Version {
			t.Errorf("stored violation %v", v)
		}
	}
	bySubject, err := c.ListViolations(ctx, &optoutv1.ListViolationsRequest{SubjectId: "rep-out"})
	if err != nil || len(bySubject.Violations) != 2 {
		t.Fatalf("violations of rep-out: %v, %v", bySubject, err)
	}
	page, err := c.ListViolations(ctx, &optoutv1.ListViolationsRequest{Service: "mailer", Limit: 2})
	if err != nil || len(page.Violations) != 2 {
		t.Fatalf("first page: %v, %v", page, err)
	}
	rest, err := c.ListViolations(ctx, &optoutv1.ListViolationsRequest{Service: "mailer", BeforeId: page.Violations[1].Id})
	if err != nil || len(rest.Violations) != violations-2 || rest.Violations[0].Id >= page.Violations[1].Id {
		t.Fatalf("second page: %v, %v", rest, err)
	}

	scores, err := c.ServiceScores(ctx, "", 0)
	if err != nil || len(scores.Scores) != 2 {
		t.Fatalf("scores: %v, %v", scores, err)
	}
	m, b := scores.Scores[1], scores.Scores[0] // service order: batcher, mailer
	wantScore := float64(violations) / float64(len(reports)) * 10000
	if m.Service != "mailer" || m.Reports != uint64(len(reports)) || m.Violations != uint64(violations) ||
		m.WithoutReceipt != 3 || m.ViolationsPer_10K != wantScore || b.Service != "batcher" || b.ViolationsPer_10K != 0 {
		t.Fatalf("scores %v; want mailer %d/%d (%.0f per 10k)", scores.Scores, violations, len(reports), wantScore)
	}
	_, err = c.ServiceScores(ctx, "", 90*time.Minute)
	wantCode(t, err, connect.CodeInvalidArgument, "window: 1h30m0s must be whole hours")
	line := fmt.Sprintf(`optoutd_service_violation_score{service="mailer"} %g`, wantScore)
	for _, p := range pc.procs {
		deadline := time.Now().Add(10 * time.Second)
		for !bytes.Contains(metricsOf(t, p), []byte(line)) {
			if time.Now().After(deadline) {
				t.Fatalf("%s /metrics lacks %s", p.id, line)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
