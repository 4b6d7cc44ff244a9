package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdSystem runs three etcd members, each as its own OS process: the
// bench binary re-executed as `bench etcd-node`, which runs etcd's embed
// package until signalled.
type etcdSystem struct {
	self   string // this executable
	timing string

	procs     []*proc
	dirs      []string // data dirs
	clientURL []string

	mu      sync.Mutex
	clients []*clientv3.Client
	all     *clientv3.Client
}

func (s *etcdSystem) Name() string          { return sysEtcd }
func (s *etcdSystem) NodeName(i int) string { return s.procs[i].name }

func (s *etcdSystem) tickElection() (int, int) {
	if s.timing == etcdTimingDefault {
		return 100, 1000
	}
	return 50, 500
}

func (s *etcdSystem) Settings() map[string]string {
	tick, election := s.tickElection()
	return map[string]string{
		"binary":             "go.etcd.io/etcd/server/v3 " + etcdServerVersion() + " embed, one member per process",
		"heartbeat-interval": strconv.Itoa(tick) + "ms",
		"election-timeout":   strconv.Itoa(election) + "ms",
		"pre-vote":           "true (default)",
		"snapshot-count":     strconv.Itoa(etcdSnapshotCount) + " (matches optoutd's snapshot threshold)",
		"fsync":              "on (default: WAL fsync per Ready batch; bbolt backend commits every 100ms or 10000 ops)",
		"auto-compaction":    "off (default): the backend keeps every revision",
		"max-txn-ops":        strconv.Itoa(maxBatch) + " (default 128; the batch workload's Txn of Gets)",
		"client":             "go.etcd.io/etcd/client/v3 (gRPC, HTTP/2, round-robin over the endpoints)",
		"log-level":          "warn",
	}
}

func (s *etcdSystem) Start(ctx context.Context, dir string) error {
	addrs, err := freePorts(6)
	if err != nil {
		return err
	}
	names := []string{"e1", "e2", "e3"}
	initial := joinInitial(names, addrs[3:], "http://")
	tick, election := s.tickElection()
	for i, name := range names {
		s.dirs = append(s.dirs, filepath.Join(dir, name))
		s.clientURL = append(s.clientURL, "http://"+addrs[i])
		p := &proc{
			name: name, bin: s.self, logPath: filepath.Join(dir, name+".log"),
			args: []string{"etcd-node", "--name", name, "--data-dir", filepath.Join(dir, name),
				"--client-url", "http://" + addrs[i], "--peer-url", "http://" + addrs[3+i],
				"--initial-cluster", initial,
				"--heartbeat-ms", strconv.Itoa(tick), "--election-ms", strconv.Itoa(election)},
		}
		s.procs = append(s.procs, p)
		if err := p.start(); err != nil {
			return err
		}
	}
	for i := range s.procs {
		if err := s.waitReady(ctx, i); err != nil {
			return err
		}
	}
	s.all, err = s.newClient(s.clientURL)
	return err
}

func (s *etcdSystem) waitReady(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return waitHTTP200(ctx, s.procs[i], s.clientURL[i]+"/readyz")
}

func (s *etcdSystem) newClient(eps []string) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	s.mu.Lock()
	s.clients = append(s.clients, c)
	s.mu.Unlock()
	return c, nil
}

func (s *etcdSystem) Close() {
	s.mu.Lock()
	for _, c := range s.clients {
		_ = c.Close()
	}
	s.clients = nil
	s.mu.Unlock()
	for _, p := range s.procs {
		p.kill()
	}
}

func (s *etcdSystem) Kill(i int) { s.procs[i].kill() }

func (s *etcdSystem) Restart(ctx context.Context, i int) error {
	if err := s.procs[i].start(); err != nil {
		return err
	}
	return s.waitReady(ctx, i)
}

func (s *etcdSystem) Check() error            { return checkProcs(s.procs) }
func (s *etcdSystem) PIDs() []int             { return pids(s.procs) }
func (s *etcdSystem) Procs() []*proc          { return s.procs }
func (s *etcdSystem) MetricsURL(i int) string { return s.clientURL[i] + "/metrics" }

// DiskBreakdown: WAL, backend (with its buckets; "key" holds every
// revision of every key, as auto-compaction is off), snapshots.
func (s *etcdSystem) DiskBreakdown(dataDir string) (*NodeDisk, error) {
	d, err := walkDisk(dataDir, etcdPart)
	if err != nil {
		return &d, err
	}
	d.Buckets, d.FreeBytes, err = boltBuckets(filepath.Join(dataDir, "member", "snap", "db"))
	return &d, err
}

// DataDirs are the members' data dirs.
func (s *etcdSystem) DataDirs() []string { return s.dirs }

// SyncMetrics: etcd fsyncs its WAL once per Raft Ready batch and commits
// its bbolt backend in the background (every 100 ms or 10,000 ops).
func (s *etcdSystem) SyncMetrics() (string, string) {
	return "etcd_disk_wal_fsync_duration_seconds_count", "etcd_disk_backend_commit_duration_seconds_count"
}

func (s *etcdSystem) Leader(ctx context.Context) (int, error) {
	leader := -1
	err := retry(ctx, func(ctx context.Context) error {
		if leader = s.PollLeader(ctx); leader < 0 {
			return errors.New("no member reports itself leader")
		}
		return nil
	})
	return leader, err
}

func (s *etcdSystem) PollLeader(ctx context.Context) int {
	for i, ep := range s.clientURL {
		if !s.procs[i].running() {
			continue
		}
		st, err := s.all.Status(ctx, ep)
		if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
			return i
		}
	}
	return -1
}

// Clients: one clientv3.Client per target. With several endpoints it
// balances round-robin per request, which spreads load like the optoutd
// side's one-start-node-per-worker.
func (s *etcdSystem) Clients(ctx context.Context, target string) (func(int) Ops, error) {
	c := s.all
	if target != targetAll {
		l, err := s.Leader(ctx)
		if err != nil {
			return nil, err
		}
		eps := []string{s.clientURL[l]}
		if target == targetFollowers {
			eps = nil
			for _, i := range others(len(s.clientURL), l) {
				eps = append(eps, s.clientURL[i])
			}
		}
		if c, err = s.newClient(eps); err != nil {
			return nil, err
		}
	}
	ops := etcdOps{c}
	return func(int) Ops { return ops }, nil
}

type etcdOps struct{ c *clientv3.Client }

func etcdKey(subject string) string { return "optout/" + subject + "/" + benchPurpose }

// etcdValue is about the size of what optoutd stores for a record; like
// the optoutd side, blind writes always opt out and CAS alternates.
func etcdValue(state optoutv1.State) string {
	return "state=" + strconv.Itoa(int(state)) + ";source=bench;reason=load"
}

func (o etcdOps) Check(ctx context.Context, subject string) error {
	r, err := o.c.Get(ctx, etcdKey(subject))
	if err != nil {
		return err
	}
	if len(r.Kvs) == 0 {
		return errMissing
	}
	return nil
}

// CheckBatch is one Txn of Gets: linearizable, all at one revision.
func (o etcdOps) CheckBatch(ctx context.Context, subjects []string) error {
	gets := make([]clientv3.Op, len(subjects))
	for i, s := range subjects {
		gets[i] = clientv3.OpGet(etcdKey(s))
	}
	r, err := o.c.Txn(ctx).Then(gets...).Commit()
	if err != nil {
		return err
	}
	if len(r.Responses) != len(subjects) {
		return fmt.Errorf("bench: Txn of %d Gets answered %d", len(subjects), len(r.Responses))
	}
	for _, res := range r.Responses {
		if rr := res.GetResponseRange(); rr == nil || len(rr.Kvs) == 0 {
			return errMissing
		}
	}
	return nil
}

func (o etcdOps) Set(ctx context.Context, subject string, seq uint64) error {
	_, err := o.c.Put(ctx, etcdKey(subject), etcdValue(optoutv1.State_STATE_OPTED_OUT))
	return err
}

func (o etcdOps) SetBatch(ctx context.Context, subjects []string, _ uint64) error {
	puts := make([]clientv3.Op, len(subjects))
	for i, s := range subjects {
		puts[i] = clientv3.OpPut(etcdKey(s), etcdValue(optoutv1.State_STATE_OPTED_OUT))
	}
	_, err := o.c.Txn(ctx).Then(puts...).Commit()
	return err
}

func (o etcdOps) CAS(ctx context.Context, subject string, expected, seq uint64) (uint64, error) {
	k := etcdKey(subject)
	r, err := o.c.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(k), "=", int64(expected))).
		Then(clientv3.OpPut(k, etcdValue(casState(seq)))).
		Commit()
	if err != nil {
		return 0, err
	}
	if !r.Succeeded {
		return 0, errConflict
	}
	return uint64(r.Header.Revision), nil
}

func (o etcdOps) Version(ctx context.Context, subject string) (uint64, error) {
	r, err := o.c.Get(ctx, etcdKey(subject))
	if err != nil {
		return 0, err
	}
	if len(r.Kvs) == 0 {
		return 0, nil
	}
	return uint64(r.Kvs[0].ModRevision), nil
}
