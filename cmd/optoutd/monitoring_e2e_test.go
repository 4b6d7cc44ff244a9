package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var metricName = regexp.MustCompile(`\boptoutd_[a-z0-9_]+`)

// exported scrapes every node after exercising each enforcement path once,
// so that every labelled series has a sample, and returns the metric
// family names (histogram and summary suffixes folded in).
func exported(t *testing.T, pc *procCluster) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pc.all()
	d, err := c.Gate(ctx, "mon-1", "analytics", client.WithReceipt())
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, c, "mon-1", "analytics", optoutv1.State_STATE_OPTED_OUT, nil)
	if _, err := c.Fence(ctx, "mailer", d.Check.Receipt, "mon-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fence(ctx, "mailer", "not-a-receipt", "mon-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateOverride(ctx, &optoutv1.CreateOverrideRequest{Purpose: "analytics", Effect: optoutv1.OverrideEffect_OVERRIDE_EFFECT_ALLOW,
		Reason: "monitoring test", Owner: "ci", ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Gate(ctx, "mon-1", "analytics"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReportProcessing(ctx, "mailer", []*optoutv1.ProcessingReport{{SubjectId: "mon-2", Purpose: "analytics", ProcessedVersion: d.Check.ReadIndex}}); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range pc.procs {
		sc := bufio.NewScanner(bytes.NewReader(metricsOf(t, p)))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "# TYPE ") {
				names[strings.Fields(line)[2]] = true
			}
		}
	}
	return names
}

// TestMonitoringNamesOnlyExportedMetrics: the alert rules and the
// dashboard in deploy/monitoring parse, have what Prometheus and Grafana
// need, and every optoutd_* series they name is one a running cluster
// exports.
func TestMonitoringNamesOnlyExportedMetrics(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "monitoring")
	rulesText, err := os.ReadFile(filepath.Join(dir, "optoutd-alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(rulesText, &rules); err != nil {
		t.Fatalf("optoutd-alerts.yaml: %v", err)
	}
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q in group %q lacks alert, expr, severity or summary", r.Alert, g.Name)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	dashText, err := os.ReadFile(filepath.Join(dir, "optoutd-enforcement.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(dashText, &dash); err != nil {
		t.Fatalf("optoutd-enforcement.json: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("only %d queries in the rules and the dashboard", len(exprs))
	}
	have := exported(t, startProcCluster(t))
	named := 0
	for _, e := range exprs {
		for _, m := range metricName.FindAllString(e, -1) {
			named++
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
			if !have[m] && !have[base] {
				t.Errorf("%q is named in deploy/monitoring but no node exports it", m)
			}
		}
	}
	if named == 0 {
		t.Fatal("deploy/monitoring names no optoutd metric")
	}
}
