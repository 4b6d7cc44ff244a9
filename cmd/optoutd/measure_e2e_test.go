package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// TestMeasureBackupRestore is the measurement behind docs/operations.md's
// figures, not a CI test: it runs only with OPTOUT_MEASURE_RECORDS set
// (e.g. 1000000). It loads that many records into a three-process cluster
// through the API (concurrent Sets, every one a Raft entry), then, runs
// times (OPTOUT_MEASURE_RUNS, default 3): saves a backup from a follower,
// restores it into three new data directories one after another, and
// starts the restored cluster until every node is ready. It logs each
// duration.
func TestMeasureBackupRestore(t *testing.T) {
	n := envInt(t, "OPTOUT_MEASURE_RECORDS", 0)
	if n == 0 {
		t.Skip("set OPTOUT_MEASURE_RECORDS to measure")
	}
	runs := envInt(t, "OPTOUT_MEASURE_RUNS", 3)
	ctl := ctlBinary(t)
	// A large snapshot threshold keeps Raft's own snapshots of a growing
	// state from dominating the load; it changes nothing measured.
	src := startProcClusterArgs(t, "--snapshot-threshold", "4000000", "--log-level", "warn")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	start := time.Now()
	c := src.all()
	var wg sync.WaitGroup
	const workers = 256
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				// A retry after a leader change (outcome unknown) may apply
				// twice: one more audit entry, the same record.
				req := &optoutv1.SetRequest{SubjectId: fmt.Sprintf("m-%07d", i), Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT, Source: "measure"}
				var err error
				for try := 0; try < 20; try++ {
					if _, err = c.Set(ctx, req); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	load := time.Since(start)
	t.Logf("loaded %d records in %v (%.0f writes/s, %d concurrent Sets)", n, load.Round(time.Second), float64(n)/load.Seconds(), workers)
	want := src.settledDigest(ctx, 0)
	follower := src.procs[0]
	if l := src.leader(ctx); l == follower {
		follower = src.procs[1]
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")
	for run := 1; run <= runs; run++ {
		t0 := time.Now()
		h := parseHeader(t, mustRun(t, ctl, "--timeout", "60s", "--endpoints", follower.api, "snapshot", "save", file))
		save := time.Since(t0)
		if h.Records != want.Records {
			t.Fatalf("backup has %d records, source %d", h.Records, want.Records)
		}
		t0 = time.Now()
		mustRun(t, ctl, "--timeout", "60s", "--endpoints", follower.api, "snapshot", "save", "--gzip", file+".gz-run")
		saveGzip := time.Since(t0)
		_ = os.Remove(file + ".gz-run")
		t0 = time.Now()
		mustRun(t, ctl, "snapshot", "inspect", file)
		inspect := time.Since(t0)
		t0 = time.Now()

		root := filepath.Join(dir, fmt.Sprintf("run%d", run))
		var restores []time.Duration
		var startAt time.Time
		dst := restoreProcCluster(t, file, root, func(string) {
			restores = append(restores, time.Since(t0))
			t0 = time.Now()
		}, func() { startAt = time.Now() })
		ready := time.Since(startAt)
		got := dst.settledDigest(ctx, want.AppliedIndex+1)
		if got.Records != want.Records {
			t.Fatalf("restored cluster has %d records, source %d", got.Records, want.Records)
		}
		t.Logf("run %d: file %d bytes (%d state bytes, %d records); save %.2fs (with --gzip %.2fs); inspect %.2fs; restore per node %.2fs %.2fs %.2fs; start to all ready %.2fs",
			run, h.SizeBytes, h.StateBytes, h.Records, save.Seconds(), saveGzip.Seconds(), inspect.Seconds(),
			restores[0].Seconds(), restores[1].Seconds(), restores[2].Seconds(), ready.Seconds())
		for _, p := range dst.procs {
			dst.kill(p)
		}
		_ = os.RemoveAll(root)
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil || n < 0 {
		t.Fatalf("%s=%q is not a count", name, v)
	}
	return n
}

// startProcClusterArgs is startProcCluster with extra server flags.
func startProcClusterArgs(t *testing.T, extra ...string) *procCluster {
	pc := &procCluster{t: t, bin: binary(t)}
	addrs := freePorts(t, 6)
	var initial []string
	for i := 0; i < 3; i++ {
		initial = append(initial, fmt.Sprintf("n%d=%s", i+1, addrs[3+i]))
	}
	root := t.TempDir()
	for i := 0; i < 3; i++ {
		p := &proc{id: fmt.Sprintf("n%d", i+1), api: addrs[i], raft: addrs[3+i]}
		p.args = append([]string{"server", "--id", p.id, "--data-dir", filepath.Join(root, p.id),
			"--api-addr", p.api, "--raft-addr", p.raft, "--initial-cluster", strings.Join(initial, ",")}, extra...)
		pc.procs = append(pc.procs, p)
		pc.start(p)
	}
	t.Cleanup(func() {
		for _, p := range pc.procs {
			pc.kill(p)
		}
	})
	pc.waitReady(30 * time.Second)
	return pc
}
