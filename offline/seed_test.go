package offline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/cluster/clustertest"
	"github.com/optoutd/optoutd/fsm"
	"github.com/optoutd/optoutd/offline"
	"github.com/optoutd/optoutd/snapfile"
	"github.com/optoutd/optoutd/store"
)

// loadHistory writes n subjects through the cluster, re-consents every
// fifth (a compare-and-set opt-in over the opt-out) and erases every
// seventh, so the state has records, history and erasures. It returns the
// subjects and the highest acknowledged version.
func loadHistory(t *testing.T, ctx context.Context, nodes []*cluster.Node, n int) ([]string, uint64) {
	t.Helper()
	var (
		mu       sync.Mutex
		subjects []string
		top      uint64
		wg       sync.WaitGroup
		errs     = make(chan error, 8)
	)
	note := func(v uint64) {
		mu.Lock()
		top = max(top, v)
		mu.Unlock()
	}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := nodes[w%len(nodes)]
			for i := w; i < n; i += 8 {
				s := fmt.Sprintf("subject-%05d", i)
				r, err := setRetry(ctx, node, s, optoutd.StateOptedOut, nil)
				if err != nil {
					errs <- err
					return
				}
				note(r.Version)
				if i%5 == 0 {
					v := r.Version
					if r, err = setRetry(ctx, node, s, optoutd.StateOptedIn, &v); err != nil {
						errs <- err
						return
					}
					note(r.Version)
				}
				if i%7 == 0 {
					var v uint64
					err := retry(ctx, func() (err error) {
						v, _, err = store.New(node).EraseSubject(ctx, s, "test erasure", 0, "")
						return err
					})
					if err != nil {
						errs <- err
						return
					}
					note(v)
				}
				mu.Lock()
				subjects = append(subjects, s)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return subjects, top
}

// setRetry is set with an idempotency key, retried while the outcome is
// unknown or the write was not applied (a leader change on a loaded
// machine): the key makes it apply once.
func setRetry(ctx context.Context, n *cluster.Node, subject string, st optoutd.State, expected *uint64) (optoutd.Record, error) {
	var rec optoutd.Record
	idem := fmt.Sprintf("%s-%v-%v", subject, st, expected != nil)
	err := retry(ctx, func() error {
		res, err := store.New(n).Set(ctx, optoutd.SetRequest{Key: key(subject), State: st, Source: "test", ExpectedVersion: expected, IdempotencyKey: idem})
		rec = res.Record
		return err
	})
	return rec, err
}

// retry runs fn until it succeeds or fails with an error that says the
// request was refused (not a leader change).
func retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		switch optoutd.ErrorCode(err) {
		case optoutd.Unavailable, optoutd.OutcomeUnknown:
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type snapshotOfState struct {
	records map[string]optoutd.Record
	changes []optoutd.AuditEntry
	audit   optoutd.AuditReport
}

// capture reads every subject's record and the whole audit log up to
// index (entries above it were written after the backup).
func capture(t *testing.T, v optoutd.View, subjects []string, index uint64) snapshotOfState {
	t.Helper()
	s := snapshotOfState{records: map[string]optoutd.Record{}}
	for _, sub := range subjects {
		r, ok, err := v.Get(key(sub))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			s.records[sub] = r
		}
	}
	all, err := v.Changes(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.Version <= index {
			s.changes = append(s.changes, e)
		}
	}
	if s.audit, err = v.VerifyAudit(); err != nil {
		t.Fatal(err)
	}
	return s
}

func digestFile(t *testing.T, path string) ([32]byte, uint64) {
	t.Helper()
	f, err := fsm.Open(fsm.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sum [32]byte
	var idx uint64
	err = f.View(func(r *fsm.Reader) (err error) {
		idx = r.AppliedIndex()
		sum, _, err = r.Digest()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return sum, idx
}

// TestBackupSeedsNewCluster: a backup taken from a follower of a loaded
// cluster holds every acknowledged write; seeded into three fresh data
// directories it starts a new cluster whose state is byte-for-byte the
// source's at the backup index, with every record and audit entry, at a
// term no lower than the backup's.
func TestBackupSeedsNewCluster(t *testing.T) {
	src := clustertest.New(t, 3)
	leader := src.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 2*time.Minute)
	subjects, acked := loadHistory(t, ctx, src.Nodes(), 400)

	var buf bytes.Buffer
	idx, err := store.New(src.Followers(leader)[0]).Backup(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if idx < acked {
		t.Fatalf("backup at index %d misses acknowledged writes up to %d", idx, acked)
	}
	hdr, err := snapfile.Verify(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if hdr.AppliedIndex != idx || hdr.AppliedTerm == 0 || hdr.CreatedAtUnixNanos == 0 {
		t.Fatalf("header %v, backup index %d", hdr, idx)
	}
	srcDigest, err := leader.StateDigest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if srcDigest.AppliedIndex != idx {
		t.Fatalf("source moved on to %d after the backup at %d; the test writes nothing more", srcDigest.AppliedIndex, idx)
	}
	if hdr.Records != srcDigest.Records {
		t.Fatalf("header counts %d records, source has %d", hdr.Records, srcDigest.Records)
	}
	var want snapshotOfState
	if _, err := leader.Read(ctx, func(v optoutd.View) error { want = capture(t, v, subjects, idx); return nil }); err != nil {
		t.Fatal(err)
	}
	src.StopAll()

	dst := clustertest.New(t, 3, func(c *cluster.Config) {
		got, err := offline.SeedFromBackup(*c, bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("seed %s: %v", c.ID, err)
		}
		if got.AppliedIndex != idx {
			t.Fatalf("seed %s: header index %d", c.ID, got.AppliedIndex)
		}
		// Before the node starts: the seeded state is the source's.
		if sum, at := digestFile(t, filepath.Join(c.DataDir, "fsm.db")); sum != srcDigest.SHA256 || at != idx {
			t.Fatalf("seeded %s: digest %x at %d, source %x at %d", c.ID, sum, at, srcDigest.SHA256, idx)
		}
	})
	dl := dst.WaitLeader(20 * time.Second)
	if term := dl.Raft().CurrentTerm(); term <= hdr.AppliedTerm {
		t.Fatalf("new cluster's term %d is not above the backup's %d", term, hdr.AppliedTerm)
	}
	for _, n := range dst.Nodes() {
		var got snapshotOfState
		if _, err := n.Read(ctx, func(v optoutd.View) error { got = capture(t, v, subjects, idx); return nil }); err != nil {
			t.Fatalf("%s: %v", n.ID(), err)
		}
		if !reflect.DeepEqual(got.records, want.records) {
			t.Fatalf("%s: %d records differ from the source's %d", n.ID(), len(got.records), len(want.records))
		}
		if !reflect.DeepEqual(got.changes, want.changes) {
			t.Fatalf("%s: %d audit entries differ from the source's %d", n.ID(), len(got.changes), len(want.changes))
		}
		if !got.audit.OK() || got.audit.Entries < want.audit.Entries {
			t.Fatalf("%s: audit %+v, source %+v", n.ID(), got.audit, want.audit)
		}
	}
	r, err := set(ctx, dl, "after-restore", optoutd.StateOptedOut, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version <= idx {
		t.Fatalf("write after restore got version %d, not above the backup's %d", r.Version, idx)
	}
}

// validBackup returns a small backup of a fresh one-node cluster.
func validBackup(t *testing.T) []byte {
	t.Helper()
	c := clustertest.New(t, 1)
	n := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 30*time.Second)
	if _, err := set(ctx, n, "u1", optoutd.StateOptedOut, nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := store.New(n).Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	c.StopAll()
	return buf.Bytes()
}

func seedConfig(dir string) cluster.Config {
	cfg := clustertest.TestConfig()
	cfg.ID, cfg.DataDir, cfg.RaftAddr = "n1", dir, "127.0.0.1:7101"
	cfg.InitialCluster = map[string]string{"n1": "127.0.0.1:7101", "n2": "127.0.0.1:7102", "n3": "127.0.0.1:7103"}
	return cfg
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestSeedRefusesBadBackups: a corrupt, truncated or padded backup is
// refused with ErrBadSnapshot, and nothing is left behind: a missing data
// directory (and its missing parent) is not created, an empty one stays
// empty.
func TestSeedRefusesBadBackups(t *testing.T) {
	good := validBackup(t)
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	cases := map[string][]byte{
		"empty":               nil,
		"magic only":          good[:8],
		"truncated header":    good[:20],
		"truncated state":     good[:len(good)/2],
		"missing checksum":    good[:len(good)-32],
		"one byte short":      good[:len(good)-1],
		"corrupt state":       flip(len(good) / 2),
		"corrupt checksum":    flip(len(good) - 1),
		"corrupt magic":       flip(0),
		"trailing garbage":    append(bytes.Clone(good), 0),
		"not a backup at all": []byte(strings.Repeat("SQLite format 3\x00", 100)),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			_, err := offline.SeedFromBackup(seedConfig(filepath.Join(root, "parent", "n1")), bytes.NewReader(b))
			if !errors.Is(err, snapfile.ErrBadSnapshot) {
				t.Fatalf("seed: %v, want ErrBadSnapshot", err)
			}
			if left := entries(t, root); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
			empty := filepath.Join(root, "empty")
			if err := os.Mkdir(empty, 0o700); err != nil {
				t.Fatal(err)
			}
			if _, err := offline.SeedFromBackup(seedConfig(empty), bytes.NewReader(b)); !errors.Is(err, snapfile.ErrBadSnapshot) {
				t.Fatalf("seed into empty dir: %v", err)
			}
			if left := entries(t, empty); len(left) != 0 {
				t.Fatalf("left behind in the empty data dir: %v", left)
			}
		})
	}
}

// TestSeedWritesSnapshotTermAndState: into an existing empty directory
// (a mount point), seeding leaves exactly raft.db, fsm.db and snapshots/;
// the snapshot is at the backup's index and term with the initial cluster
// as configuration, and the stable store's term is the backup's.
func TestSeedWritesSnapshotTermAndState(t *testing.T) {
	good := validBackup(t)
	dir := t.TempDir()
	cfg := seedConfig(dir)
	hdr, err := offline.SeedFromBackup(cfg, bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(entries(t, dir), ","); got != "fsm.db,raft.db,snapshots" {
		t.Fatalf("data dir holds %s", got)
	}
	snaps, err := raft.NewFileSnapshotStore(dir, 1, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	list, err := snaps.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("snapshots: %v %v", list, err)
	}
	m := list[0]
	if m.Index != hdr.AppliedIndex || m.Term != hdr.AppliedTerm || len(m.Configuration.Servers) != 3 {
		t.Fatalf("snapshot meta %+v, header %v", m, hdr)
	}
	for _, s := range m.Configuration.Servers {
		if s.Suffrage != raft.Voter || string(s.Address) != cfg.InitialCluster[string(s.ID)] {
			t.Fatalf("server %+v", s)
		}
	}
	ls, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	term, err := ls.GetUint64([]byte("CurrentTerm"))
	last, _ := ls.LastIndex()
	_ = ls.Close()
	if err != nil || term != hdr.AppliedTerm || last != 0 {
		t.Fatalf("stable term %d (%v), last log index %d; want term %d and an empty log", term, err, last, hdr.AppliedTerm)
	}
	if _, idx := digestFile(t, filepath.Join(dir, "fsm.db")); idx != hdr.AppliedIndex {
		t.Fatalf("fsm.db at %d, header %d", idx, hdr.AppliedIndex)
	}

	// Seeding again, into what is now a node's data directory, is refused
	// and changes nothing.
	before := entries(t, dir)
	_, err = offline.SeedFromBackup(cfg, bytes.NewReader(good))
	if err == nil || !strings.Contains(err.Error(), "--data-dir") || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("seed into a non-empty dir: %v", err)
	}
	if after := entries(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("data dir changed: %v -> %v", before, after)
	}
}

// TestSeedFlagErrors: a seed with bad membership names the flag and
// touches nothing.
func TestSeedFlagErrors(t *testing.T) {
	good := validBackup(t)
	root := t.TempDir()
	dir := filepath.Join(root, "n1")
	for _, tc := range []struct {
		name string
		edit func(*cluster.Config)
		want string
	}{
		{"no initial cluster", func(c *cluster.Config) { c.InitialCluster = nil }, "--initial-cluster"},
		{"not a member", func(c *cluster.Config) { delete(c.InitialCluster, "n1") }, "--initial-cluster"},
		{"wrong own address", func(c *cluster.Config) { c.RaftAddr = "127.0.0.1:9999" }, "--initial-cluster"},
		{"bad id", func(c *cluster.Config) { c.ID = "n 1" }, "--id"},
		{"no data dir", func(c *cluster.Config) { c.DataDir = "" }, "--data-dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := seedConfig(dir)
			tc.edit(&cfg)
			_, err := offline.SeedFromBackup(cfg, bytes.NewReader(good))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to name %s", err, tc.want)
			}
			if left := entries(t, root); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
		})
	}
}

// TestBackupDuringWrites: a backup taken while writes go on is one
// consistent point of the log: it holds every write acknowledged before
// the call, nothing above its own index, and an audit chain that verifies.
func TestBackupDuringWrites(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 2*time.Minute)
	subjects, before := loadHistory(t, ctx, c.Nodes(), 200)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var during uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Failures (a leader change on a loaded machine) do not matter
			// here: only acknowledged writes are checked.
			if r, err := set(ctx, leader, fmt.Sprintf("during-%d", i), optoutd.StateOptedOut, nil); err == nil {
				during = r.Version
			}
		}
	}()
	var buf bytes.Buffer
	idx, err := store.New(c.Followers(leader)[1]).Backup(ctx, &buf)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if idx < before {
		t.Fatalf("backup at %d misses writes acknowledged up to %d", idx, before)
	}
	if during <= idx {
		t.Logf("no write landed after the backup's index (%d <= %d); the check below is weaker", during, idx)
	}
	dir := filepath.Join(t.TempDir(), "n1")
	if _, err := offline.SeedFromBackup(seedConfig(dir), bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	f, err := fsm.Open(fsm.Config{Path: filepath.Join(dir, "fsm.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = f.View(func(r *fsm.Reader) error {
		s := capture(t, r, subjects, ^uint64(0))
		if !s.audit.OK() || s.audit.LastVersion > idx {
			t.Fatalf("audit in the backup: %+v (backup index %d)", s.audit, idx)
		}
		for _, e := range s.changes {
			if e.Version > idx {
				t.Fatalf("the backup at %d holds a change at version %d", idx, e.Version)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
