package main

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// NodeDisk is one node's data dir after the run, read with the nodes
// stopped. Sizes are bytes allocated on disk (st_blocks), so preallocated
// files (etcd's 64 MiB WAL segments) count in full, as they do for df.
type NodeDisk struct {
	Node  string `json:"node"`
	Bytes int64  `json:"bytes"`
	// ApparentBytes: the files' lengths.
	ApparentBytes int64 `json:"apparent_bytes"`
	// Parts: bytes by kind of file (raft log, state machine, snapshots,
	// wal, backend, other).
	Parts map[string]int64 `json:"parts"`
	// Buckets: pages in use by each top-level bucket of the state
	// machine's bbolt file (optoutd fsm.db, etcd member/snap/db), and
	// FreeBytes its free pages.
	Buckets   map[string]int64 `json:"buckets,omitempty"`
	FreeBytes int64            `json:"free_bytes,omitempty"`
	Error     string           `json:"error,omitempty"`
}

// DiskUsage is every node's data dir and the figures per record.
type DiskUsage struct {
	Records int        `json:"records"`
	Nodes   []NodeDisk `json:"nodes"`
	// BytesPerRecord: the mean node's bytes over Records.
	BytesPerRecord float64 `json:"bytes_per_record"`
	// HistoryBytesPerRecord: the part of it that is history kept on
	// purpose (optoutd: the audit buckets), reported apart.
	HistoryBytesPerRecord float64 `json:"history_bytes_per_record"`
	HistoryOf             string  `json:"history_of,omitempty"`
}

// walkDisk sums the files under dir by the part classify names.
func walkDisk(dir string, classify func(rel string) string) (NodeDisk, error) {
	d := NodeDisk{Parts: map[string]int64{}}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		alloc := info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			alloc = st.Blocks * 512
		}
		rel, _ := filepath.Rel(dir, path)
		d.Bytes += alloc
		d.ApparentBytes += info.Size()
		d.Parts[classify(filepath.ToSlash(rel))] += alloc
		return nil
	})
	return d, err
}

// boltBuckets reads a bbolt file's top-level buckets, read-only (the node
// must have stopped: a running one holds the file's lock).
func boltBuckets(path string) (map[string]int64, int64, error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	out := map[string]int64{}
	var free int64
	err = db.View(func(tx *bolt.Tx) error {
		free = int64(db.Stats().FreePageN+db.Stats().PendingPageN) * int64(db.Info().PageSize)
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			st := b.Stats()
			out[string(name)] = int64(st.BranchAlloc + st.LeafAlloc + st.InlineBucketInuse)
			return nil
		})
	})
	return out, free, err
}

// optoutdPart classifies an optoutd data dir's files.
func optoutdPart(rel string) string {
	switch {
	case rel == "raft.db":
		return "raft log (raft.db)"
	case rel == "fsm.db":
		return "state machine (fsm.db)"
	case strings.HasPrefix(rel, "snapshots/"):
		return "snapshots"
	}
	return "other"
}

// etcdPart classifies an etcd data dir's files.
func etcdPart(rel string) string {
	switch {
	case strings.HasPrefix(rel, "member/wal/"):
		return "wal"
	case rel == "member/snap/db":
		return "backend (member/snap/db)"
	case strings.HasPrefix(rel, "member/snap/"):
		return "snapshots"
	}
	return "other"
}

// optoutdHistory are fsm.db's buckets of history kept on purpose.
var optoutdHistory = []string{"audit", "audit_by_subject", "purpose_history"}

// diskUsage reads every node's dir and forms the per-record figures;
// history names the buckets counted apart.
func diskUsage(sys System, dirs []string, records int, history []string) *DiskUsage {
	u := &DiskUsage{Records: records, HistoryOf: strings.Join(history, ", ")}
	var total, hist float64
	for i, dir := range dirs {
		nd, err := sys.DiskBreakdown(dir)
		if nd == nil {
			nd = &NodeDisk{}
		}
		nd.Node = sys.NodeName(i)
		if err != nil {
			nd.Error = err.Error()
		}
		u.Nodes = append(u.Nodes, *nd)
		total += float64(nd.Bytes)
		for _, b := range history {
			hist += float64(nd.Buckets[b])
		}
	}
	if n := len(dirs); n > 0 && records > 0 {
		u.BytesPerRecord = total / float64(n) / float64(records)
		u.HistoryBytesPerRecord = hist / float64(n) / float64(records)
	}
	return u
}
