package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// System names.
const (
	sysOptoutd = "optoutd"
	sysEtcd    = "etcd"
	// sysOptoutdBase is a second optoutd, built from --base-rev, to
	// compare two revisions of the product in one run.
	sysOptoutdBase = "optoutd-base"
)

var allSystems = []string{sysOptoutd, sysEtcd, sysOptoutdBase}

// errConflict is a compare-and-set that found another version.
var errConflict = errors.New("bench: compare-and-set conflict")

// errMissing is a read of a pre-loaded key that found nothing.
var errMissing = errors.New("bench: pre-loaded key not found")

// errNoBatch: the system has no batched write (SetBatch).
var errNoBatch = errors.New("bench: no batched write")

// System is a 3-node cluster of one product, run as 3 OS processes on
// loopback.
type System interface {
	Name() string
	// Start starts the 3 nodes with their data under dir and waits until
	// every node reports ready.
	Start(ctx context.Context, dir string) error
	// Close kills every node (SIGKILL) and closes every client.
	Close()
	// Leader returns the index (0..2) of the node that is leader now,
	// waiting for one until ctx ends.
	Leader(ctx context.Context) (int, error)
	// PollLeader asks each running node once; -1 if none says it leads.
	PollLeader(ctx context.Context) int
	// NodeName is the name of node i, e.g. "n1" or "e1".
	NodeName(i int) string
	// Kill sends SIGKILL to node i and waits until it is gone.
	Kill(i int)
	// Restart starts node i again from its data dir and waits until it is
	// ready.
	Restart(ctx context.Context, i int) error
	// Check returns an error if a node that should run has died.
	Check() error
	// PIDs are the running nodes' process ids.
	PIDs() []int
	// Clients returns the operations of worker w for the given target.
	// Every call with the same target shares one set of connections.
	Clients(ctx context.Context, target string) (func(w int) Ops, error)
	// Settings describes how the nodes are configured, for the report.
	Settings() map[string]string
	// Procs are the node processes (for CPU, RSS and data dirs).
	Procs() []*proc
	// MetricsURL is node i's Prometheus endpoint.
	MetricsURL(i int) string
	// SyncMetrics name the counters of node storage commits: each
	// commit of the replicated log (one or more fsyncs) and of the state
	// machine's store.
	SyncMetrics() (log, stateMachine string)
	// DiskBreakdown classifies the files of one node's data dir, read
	// after the nodes stopped (see disk.go).
	DiskBreakdown(dataDir string) (*NodeDisk, error)
	// DataDirs are the nodes' data dirs, in node order.
	DataDirs() []string
}

// Ops are the requests the workloads send. Keys are subject ids; each
// system maps them to its own key space.
type Ops interface {
	// Check is a linearizable read of one pre-loaded key.
	Check(ctx context.Context, subject string) error
	// CheckBatch reads many keys in one call at one point in the log
	// (etcd: one Txn of Gets).
	CheckBatch(ctx context.Context, subjects []string) error
	// Set is a blind write; seq varies the value.
	Set(ctx context.Context, subject string, seq uint64) error
	// SetBatch blind-writes distinct keys in one call (optoutd: SetBatch,
	// one log entry; etcd: one Txn of Puts). errNoBatch: the system has no
	// batched write (an optoutd-base from before SetBatch).
	SetBatch(ctx context.Context, subjects []string, seq uint64) error
	// CAS writes only if the key's version equals expected (0: the key
	// must not exist) and returns the new version, or errConflict.
	CAS(ctx context.Context, subject string, expected, seq uint64) (uint64, error)
	// Version is a linearizable read of the key's version (0 if absent).
	Version(ctx context.Context, subject string) (uint64, error)
}

// optoutdBuild is an optoutd binary and the commit it was built from.
type optoutdBuild struct {
	Bin    string
	Commit string
}

// newSystem makes system name; builds holds the optoutd binaries by
// system name.
func newSystem(name string, cfg Config, builds map[string]optoutdBuild, self string) (System, error) {
	switch name {
	case sysOptoutd, sysOptoutdBase:
		b, ok := builds[name]
		if !ok {
			return nil, fmt.Errorf("bench: no binary for %s", name)
		}
		return &optoutdSystem{name: name, bin: b.Bin, commit: b.Commit, h2c: slices.Contains(cfg.ClientH2C, name), pprof: cfg.PprofDir != ""}, nil
	case sysEtcd:
		return &etcdSystem{self: self, timing: cfg.EtcdTiming}, nil
	}
	return nil, fmt.Errorf("bench: unknown system %q", name)
}

// rotate returns list starting at index k.
func rotate[T any](list []T, k int) []T {
	out := make([]T, 0, len(list))
	for i := range list {
		out = append(out, list[(k+i)%len(list)])
	}
	return out
}

// others returns every index of n except skip, in order.
func others(n, skip int) []int {
	var out []int
	for i := 0; i < n; i++ {
		if i != skip {
			out = append(out, i)
		}
	}
	return out
}

func pids(procs []*proc) []int {
	var out []int
	for _, p := range procs {
		if id := p.pid(); id != 0 {
			out = append(out, id)
		}
	}
	return out
}

func checkProcs(procs []*proc) error {
	for _, p := range procs {
		if p.exited() {
			return fmt.Errorf("%s died; log tail:\n%s", p.name, p.logTail(2000))
		}
	}
	return nil
}
