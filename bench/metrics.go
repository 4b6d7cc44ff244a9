package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SyncStats are the storage commits of the 3 nodes during one run of a
// write workload, from their Prometheus counters.
type SyncStats struct {
	// LogSyncs: commits of the replicated log (optoutd: raft-boltdb
	// StoreLogs; etcd: WAL fsyncs), on the leader and on all nodes.
	LeaderLogSyncs float64 `json:"leader_log_syncs"`
	LogSyncs       float64 `json:"log_syncs"`
	// StateSyncs: commits of the state machine's store on all nodes
	// (optoutd: FSM batches; etcd: backend commits).
	StateSyncs float64 `json:"state_syncs"`
	// WritesPerLogSync: acknowledged writes per commit of the leader's
	// log, i.e. how many writes one fsync carries ("commits per fsync").
	WritesPerLogSync float64 `json:"writes_per_log_sync"`
	// SyncsPerWrite: every storage commit of all 3 nodes per write.
	SyncsPerWrite float64 `json:"syncs_per_write"`
	Error         string  `json:"error,omitempty"`
}

// nodeSyncs are one node's two counters at one moment.
type nodeSyncs struct{ log, state float64 }

// scrapeSyncs reads the log and state counters of every node; a node
// that does not answer fails the whole reading, and so does one that
// lacks a counter when required. Before a cell a missing counter counts
// as 0: optoutd exports hashicorp/raft's and raft-boltdb's metrics through
// go-metrics, which drops a series not updated for 5 minutes (a sweep's
// read cells take longer) and starts it again from 0 with the next
// sample.
func scrapeSyncs(ctx context.Context, sys System, required bool) ([]nodeSyncs, error) {
	logName, stateName := sys.SyncMetrics()
	out := make([]nodeSyncs, len(sys.Procs()))
	for i := range out {
		v, err := scrapeCounters(ctx, sys.MetricsURL(i), required, logName, stateName)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sys.NodeName(i), err)
		}
		out[i] = nodeSyncs{log: v[logName], state: v[stateName]}
	}
	return out, nil
}

// syncStats forms the deltas between two readings; leader is the node
// that led during the run, writes the acknowledged writes.
func syncStats(before, after []nodeSyncs, leader int, writes int64) *SyncStats {
	s := &SyncStats{}
	for i := range after {
		if i >= len(before) {
			break
		}
		dl, ds := after[i].log-before[i].log, after[i].state-before[i].state
		s.LogSyncs += dl
		s.StateSyncs += ds
		if i == leader {
			s.LeaderLogSyncs = dl
		}
	}
	if s.LeaderLogSyncs > 0 {
		s.WritesPerLogSync = float64(writes) / s.LeaderLogSyncs
	}
	if writes > 0 {
		s.SyncsPerWrite = (s.LogSyncs + s.StateSyncs) / float64(writes)
	}
	return s
}

var metricsClient = &http.Client{Timeout: 5 * time.Second}

// scrapeCounters fetches url and sums the samples of each named metric;
// with required, a name without samples is an error, else it is 0.
func scrapeCounters(ctx context.Context, url string, required bool, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	v, missing, err := parseCounters(resp.Body, names)
	if err == nil && required && len(missing) > 0 {
		err = fmt.Errorf("no metric %s", strings.Join(missing, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return v, nil
}

// parseCounters reads Prometheus text format and sums, for each name,
// the samples of exactly that metric (with any labels); missing lists the
// names that had no sample.
func parseCounters(r io.Reader, names []string) (map[string]float64, []string, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = line[:i]
			j := strings.LastIndexByte(line, '}')
			if j < 0 {
				continue
			}
			rest = strings.TrimSpace(line[j+1:])
		}
		if !want[name] {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, nil, fmt.Errorf("metric %s: %w", name, err)
		}
		out[name] += v
		seen[name] = true
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	var missing []string
	for _, n := range names {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	return out, missing, nil
}
