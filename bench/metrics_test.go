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
	v, err := parseCounters(strings.NewReader(promText), []string{"optoutd_raft_boltdb_storeLogs_count", "optoutd_fsm_apply_batch_seconds_count", "etcd_disk_wal_fsync_duration_seconds_count"})
	if err != nil {
		t.Fatal(err)
	}
	if v["optoutd_raft_boltdb_storeLogs_count"] != 120 || v["optoutd_fsm_apply_batch_seconds_count"] != 40 || v["etcd_disk_wal_fsync_duration_seconds_count"] != 48 {
		t.Errorf("parseCounters = %v", v)
	}
	if _, err := parseCounters(strings.NewReader(promText), []string{"optoutd_raft_boltdb_storeLogs"}); err != nil {
		t.Errorf("a summary's quantile samples (NaN) parse: %v", err)
	}
	if _, err := parseCounters(strings.NewReader(promText), []string{"no_such_total"}); err == nil || !strings.Contains(err.Error(), "no metric no_such_total") {
		t.Errorf("a missing metric: err = %v", err)
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
	v, err := scrapeCounters(context.Background(), srv.URL+"/metrics", "optoutd_fsm_apply_batch_seconds_count")
	if err != nil || v["optoutd_fsm_apply_batch_seconds_count"] != 40 {
		t.Errorf("scrapeCounters = %v, %v", v, err)
	}
	if _, err := scrapeCounters(context.Background(), srv.URL+"/nope", "x"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a 404: err = %v", err)
	}
}
