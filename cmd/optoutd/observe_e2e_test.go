package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

// TestMetricsAndRequestIDs: /metrics carries the series docs/operations.md
// lists, never a subject id; every response echoes a request id.
func TestMetricsAndRequestIDs(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pc.all()
	const subject = "metrics-subject-7f3a"
	if _, err := c.Set(ctx, &optoutv1.SetRequest{SubjectId: subject, Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT}); err != nil {
		t.Fatal(err)
	}
	leader := pc.leader(ctx)
	raw := optoutv1connect.NewOptOutServiceClient(httpClient(), "http://"+leader.api)
	req := connect.NewRequest(&optoutv1.CheckRequest{SubjectId: subject, Purpose: "analytics"})
	req.Header().Set("Optout-Request-Id", "trace-42")
	resp, err := raw.Check(ctx, req)
	if err != nil || resp.Header().Get("Optout-Request-Id") != "trace-42" {
		t.Fatalf("request id not echoed: %v %v", resp, err)
	}
	resp, err = raw.Check(ctx, connect.NewRequest(&optoutv1.CheckRequest{SubjectId: subject, Purpose: "analytics"}))
	if err != nil || len(resp.Header().Get("Optout-Request-Id")) != 16 {
		t.Fatalf("no generated request id: %v %v", resp.Header(), err)
	}
	r, err := http.Get("http://" + leader.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	_ = r.Body.Close()
	m := string(body)
	for _, want := range []string{
		`optoutd_rpc_requests_total{code="ok",procedure="/optout.v1.OptOutService/Check"}`,
		`optoutd_rpc_duration_seconds_bucket{procedure="/optout.v1.OptOutService/Check"`,
		`optoutd_decisions_total{decision="deny",purpose="analytics"}`,
		`optoutd_raft_state{state="Leader"} 1`,
		"optoutd_raft_term ", "optoutd_raft_commit_index ", "optoutd_raft_applied_index ",
		"optoutd_raft_last_contact_seconds ", "optoutd_node_ready 1", "optoutd_fsm_db_bytes ",
		"optoutd_fsm_commits_total ", "optoutd_fsm_deferred_syncs_total ",
		"optoutd_fsm_apply_batch_seconds_bucket", "optoutd_read_index_rounds_total",
		"optoutd_proposals_total", "optoutd_raft_commitTime", "go_build_info",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(m, subject) {
		t.Fatal("/metrics exposes a subject id")
	}
}
