package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const promText = `# HELP optoutd_raft_boltdb_storeLogs
# TYPE optoutd_raft_boltdb_storeLogs summary
optoutd_raft_boltdb_storeLogs{quantile="0.5"} NaN
optoutd_raft_boltdb_storeLogs_sum 0.5
optoutd_raft_boltdb_storeLogs_count 120
optoutd_fsm_apply_batch_seconds_bucket{le="+Inf"} 7
optoutd_fsm_apply_batch_seconds_count 40
etcd_disk_wal_fsync_duration_seconds_count{member="a"} 3
etcd_disk_wal_fsync_duration_seconds_count{member="b"} 4.5e+01
`

func TestParseCounters(t *testing.T) {
	v, missing, err := parseCounters(strings.NewReader(promText), []string{"optoutd_raft_boltdb_storeLogs_count", "optoutd_fsm_apply_batch_seconds_count", "etcd_disk_wal_fsync_duration_seconds_count"})
	if err != nil || len(missing) != 0 {
		t.Fatal(err, missing)
	}
	if v["optoutd_raft_boltdb_storeLogs_count"] != 120 || v["optoutd_fsm_apply_batch_seconds_count"] != 40 || v["etcd_disk_wal_fsync_duration_seconds_count"] != 48 {
		t.Errorf("parseCounters = %v", v)
	}
	if _, _, err := parseCounters(strings.NewReader(promText), []string{"optoutd_raft_boltdb_storeLogs"}); err != nil {
		t.Errorf("a summary's quantile samples (NaN) parse: %v", err)
	}
	if v, missing, err := parseCounters(strings.NewReader(promText), []string{"no_such_total", "optoutd_fsm_apply_batch_seconds_count"}); err != nil ||
		len(missing) != 1 || missing[0] != "no_such_total" || v["no_such_total"] != 0 {
		t.Errorf("a missing metric: %v, missing %v, err %v", v, missing, err)
	}
	if _, _, err := parseCounters(strings.NewReader("x_count abc\n"), []string{"x_count"}); err == nil {
		t.Error("a value that is no number parsed")
	}
}

func TestSyncStats(t *testing.T) {
	before := []nodeSyncs{{log: 10, state: 5}, {log: 20, state: 5}, {log: 30, state: 5}}
	after := []nodeSyncs{{log: 110, state: 55}, {log: 70, state: 55}, {log: 80, state: 55}}
	s := syncStats(before, after, 0, 400)
	// The leader (node 0) committed its log 100 times for 400 writes;
	// the followers 50 times each; every state machine 50 times.
	if s.LeaderLogSyncs != 100 || s.LogSyncs != 200 || s.StateSyncs != 150 || s.WritesPerLogSync != 4 || s.SyncsPerWrite != 350.0/400 {
		t.Errorf("syncStats = %+v", s)
	}
	if s := syncStats(before, before, 1, 0); s.WritesPerLogSync != 0 || s.SyncsPerWrite != 0 {
		t.Errorf("no writes, no syncs: %+v", s)
	}
}

func TestScrapeCounters(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, promText)
	}))
	defer srv.Close()
	v, err := scrapeCounters(context.Background(), srv.URL+"/metrics", true, "optoutd_fsm_apply_batch_seconds_count")
	if err != nil || v["optoutd_fsm_apply_batch_seconds_count"] != 40 {
		t.Errorf("scrapeCounters = %v, %v", v, err)
	}
	// go-metrics drops idle series: before a cell a missing one is 0,
	// after it (required) an error.
	if v, err := scrapeCounters(context.Background(), srv.URL+"/metrics", false, "gone_count"); err != nil || v["gone_count"] != 0 {
		t.Errorf("not required: %v, %v", v, err)
	}
	if _, err := scrapeCounters(context.Background(), srv.URL+"/metrics", true, "gone_count"); err == nil || !strings.Contains(err.Error(), "no metric gone_count") {
		t.Errorf("required: err = %v", err)
	}
	if _, err := scrapeCounters(context.Background(), srv.URL+"/nope", false, "x"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a 404: err = %v", err)
	}
}
