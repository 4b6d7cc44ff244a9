package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/optoutd/optoutd/fsm"
	"github.com/optoutd/optoutd/internal/durable"
	"github.com/optoutd/optoutd/snapfile"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Offline tools for a stopped node's data directory: seeding a node of a
// new cluster from a backup (SeedFromBackup) and rewriting the Raft
// configuration of a cluster that lost its quorum (RecoverCluster).

// keyCurrentTerm is hashicorp/raft's stable-store key for the current term.
const keyCurrentTerm = "CurrentTerm"

// SeedFromBackup makes cfg.DataDir the data directory of one node of a new
// cluster whose state is the backup read from r (the framed format of
// package snapfile, as AdminService.Snapshot streams it). Run it once per
// node, with the same backup and the same cfg.InitialCluster; then start
// the nodes as usual.
//
// It writes, like etcd's 'snapshot restore':
//   - snapshots/: a Raft snapshot whose content is the backup, at the
//     backup's applied index and term, with cfg.InitialCluster as its
//     configuration (every node a voter);
//   - raft.db: an empty log whose stable store holds the backup's term as
//     the current term, so the new cluster never runs a term behind its
//     log;
//   - fsm.db: the state, restored from that snapshot by FSM.Restore (the
//     path a node takes for a snapshot from its leader), so the node starts
//     without a restore and the state can be checked offline first.
//
// The data directory must be missing or empty. The whole backup is verified
// (framing, lengths, SHA-256, and bbolt opening the state) inside a
// temporary directory that is renamed into place only at the end: on any
// error the data directory is left as it was, or not created.
func SeedFromBackup(cfg Config, r io.Reader) (*snapfile.Header, error) {
	if len(cfg.InitialCluster) == 0 {
		return nil, errors.New("--initial-cluster: must be set: it is the new cluster's membership")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := newStage(filepath.Clean(cfg.DataDir))
	if err != nil {
		return nil, err
	}
	hdr, err := seedInto(st.dir, cfg, r)
	if err == nil {
		err = st.commit()
	}
	if err != nil {
		st.abort()
		return nil, err
	}
	return hdr, nil
}

func seedInto(dir string, cfg Config, r io.Reader) (*snapfile.Header, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	hdr, err := snapfile.PeekHeader(br)
	if err != nil {
		return nil, err
	}
	if hdr.AppliedIndex == 0 {
		return nil, fmt.Errorf("%w: the backup holds an empty state (applied index 0)", snapfile.ErrBadSnapshot)
	}
	// A state written before the FSM recorded terms has term 0; every node
	// seeds the same value, so any term >= 1 is consistent.
	term := max(hdr.AppliedTerm, 1)
	var servers []raft.Server
	for _, id := range sortedKeys(cfg.InitialCluster) {
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(cfg.InitialCluster[id]), Suffrage: raft.Voter})
	}

	hl := newHCLog(cfg.Logger)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 1, hl)
	if err != nil {
		return nil, fmt.Errorf("cluster: seed: snapshot store: %w", err)
	}
	sink, err := snaps.Create(1, hdr.AppliedIndex, term, raft.Configuration{Servers: servers}, hdr.AppliedIndex, offlineTransport{})
	if err != nil {
		return nil, fmt.Errorf("cluster: seed: create snapshot: %w", err)
	}
	ew := &errWriter{w: sink}
	if _, err := snapfile.Verify(io.TeeReader(br, ew)); err != nil {
		_ = sink.Cancel()
		if ew.err != nil {
			return nil, fmt.Errorf("cluster: seed: write snapshot: %w", ew.err)
		}
		return nil, err
	}
	if err := sink.Close(); err != nil {
		return nil, fmt.Errorf("cluster: seed: write snapshot: %w", err)
	}

	if err := restoreFSM(dir, snaps, sink.ID(), hdr.AppliedIndex, cfg.Logger); err != nil {
		return nil, err
	}
	if err := writeTerm(filepath.Join(dir, "raft.db"), term); err != nil {
		return nil, err
	}
	return hdr, durable.SyncDir(dir)
}

// restoreFSM builds dir/fsm.db from the snapshot just written, through
// FSM.Restore, which checks the stream again and opens the state once.
func restoreFSM(dir string, snaps *raft.FileSnapshotStore, id string, index uint64, log *slog.Logger) error {
	f, err := fsm.Open(fsm.Config{Path: filepath.Join(dir, "fsm.db"), Logger: log})
	if err != nil {
		return fmt.Errorf("cluster: seed: %w", err)
	}
	_, rc, err := snaps.Open(id)
	if err == nil {
		err = f.Restore(rc)
	}
	if err == nil && f.AppliedIndex() != index {
		err = fmt.Errorf("restored state is at index %d, the backup says %d", f.AppliedIndex(), index)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cluster: seed: state: %w", err)
	}
	return nil
}

func openLogStore(path string) (*raftboltdb.BoltStore, error) {
	s, err := raftboltdb.New(raftboltdb.Options{
		Path: path,
		BoltOptions: &bbolt.Options{
			Timeout:        time.Second,
			NoFreelistSync: true,
			FreelistType:   bbolt.FreelistMapType,
		},
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%s is locked: is the node still running? %w", path, err)
	}
	return s, err
}

func writeTerm(path string, term uint64) error {
	s, err := openLogStore(path)
	if err != nil {
		return fmt.Errorf("cluster: seed: raft.db: %w", err)
	}
	err = s.SetUint64([]byte(keyCurrentTerm), term)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cluster: seed: raft.db: %w", err)
	}
	return nil
}

// errWriter remembers its writer's error, so a full disk is not reported
// as a bad backup.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// stage is a temporary directory whose contents become the data directory
// only in commit. If the data directory does not exist, the stage is a
// hidden sibling renamed onto it (one atomic rename). If it exists and is
// empty (a mount point cannot be replaced), the stage is hidden inside it
// and its entries are moved in, raft.db first and snapshots/ last; abort
// removes whatever was moved.
type stage struct {
	target, dir string
	exists      bool
	created     []string // parent directories this stage created
	moved       []string
}

func newStage(target string) (*stage, error) {
	st := &stage{target: target}
	fi, err := os.Stat(target)
	switch {
	case err == nil && !fi.IsDir():
		return nil, fmt.Errorf("--data-dir: %s is not a directory", target)
	case err == nil:
		ents, err := os.ReadDir(target)
		if err != nil {
			return nil, fmt.Errorf("--data-dir: %w", err)
		}
		if len(ents) > 0 {
			var names []string
			for _, e := range ents[:min(len(ents), 3)] {
				names = append(names, e.Name())
			}
			return nil, fmt.Errorf("--data-dir: %s is not empty (holds %s): restore only seeds a new node; give it a new or empty directory", target, strings.Join(names, ", "))
		}
		st.exists = true
		st.dir, err = os.MkdirTemp(target, ".restore-")
		return st, err
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	parent := filepath.Dir(target)
	for p := parent; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		st.created = append(st.created, p)
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	st.dir, err = os.MkdirTemp(parent, "."+filepath.Base(target)+".restore-")
	if err != nil {
		st.abort()
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	return st, nil
}

func (st *stage) commit() error {
	if !st.exists {
		if err := os.Rename(st.dir, st.target); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		st.dir = ""
		return durable.SyncDir(filepath.Dir(st.target))
	}
	for _, name := range []string{"raft.db", "fsm.db", "snapshots"} {
		to := filepath.Join(st.target, name)
		if err := os.Rename(filepath.Join(st.dir, name), to); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		st.moved = append(st.moved, to)
	}
	if err := os.Remove(st.dir); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	st.dir = ""
	return durable.SyncDir(st.target)
}

func (st *stage) abort() {
	if st.dir != "" {
		_ = os.RemoveAll(st.dir)
	}
	for _, p := range st.moved {
		_ = os.RemoveAll(p)
	}
	for _, p := range st.created { // deepest first
		_ = os.Remove(p)
	}
}

// offlineTransport is the Transport that FileSnapshotStore.Create and
// raft.RecoverCluster need only to encode peers for the legacy snapshot
// format. It encodes an address as its bytes, as NetworkTransport does;
// everything else fails.
type offlineTransport struct{}

var errOffline = errors.New("cluster: offline transport")

var _ raft.Transport = offlineTransport{}

func (offlineTransport) Consumer() <-chan raft.RPC     { return nil }
func (offlineTransport) LocalAddr() raft.ServerAddress { return "" }
func (offlineTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, errOffline
}
func (offlineTransport) AppendEntries(raft.ServerID, raft.ServerAddress, *raft.AppendEntriesRequest, *raft.AppendEntriesResponse) error {
	return errOffline
}
func (offlineTransport) RequestVote(raft.ServerID, raft.ServerAddress, *raft.RequestVoteRequest, *raft.RequestVoteResponse) error {
	return errOffline
}
func (offlineTransport) InstallSnapshot(raft.ServerID, raft.ServerAddress, *raft.InstallSnapshotRequest, *raft.InstallSnapshotResponse, io.Reader) error {
	return errOffline
}
func (offlineTransport) EncodePeer(_ raft.ServerID, a raft.ServerAddress) []byte { return []byte(a) }
func (offlineTransport) DecodePeer(b []byte) raft.ServerAddress                  { return raft.ServerAddress(b) }
func (offlineTransport) SetHeartbeatHandler(func(raft.RPC))                      {}
func (offlineTransport) TimeoutNow(raft.ServerID, raft.ServerAddress, *raft.TimeoutNowRequest, *raft.TimeoutNowResponse) error {
	return errOffline
}

// RecoverConfig configures RecoverCluster.
type RecoverConfig struct {
	// DataDir is the stopped node's data directory.
	DataDir string
	// ID, if set, must be one of Peers: a node recovered into a
	// configuration without itself would never elect a leader.
	ID string
	// Peers maps the node IDs of the new, smaller cluster to their Raft
	// addresses. Every survivor is recovered with the same Peers.
	Peers  map[string]string
	Logger *slog.Logger
}

// ParsePeers parses "n1=host:port,n2=host:port" for --peers.
func ParsePeers(s string) (map[string]string, error) {
	out := map[string]string{}
	seen := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--peers: %q is not id=host:port", part)
		}
		if !idRE.MatchString(id) {
			return nil, fmt.Errorf("--peers: node id %q must match %s", id, idRE)
		}
		if err := checkHostPort("--peers", addr); err != nil {
			return nil, err
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("--peers: node id %q appears twice", id)
		}
		if other, dup := seen[addr]; dup {
			return nil, fmt.Errorf("--peers: %s and %s share the address %s", other, id, addr)
		}
		out[id], seen[addr] = addr, id
	}
	return out, nil
}

// RecoverCluster rewrites the Raft configuration of a stopped node to
// cfg.Peers, for a cluster that lost its quorum for good: the survivors,
// each recovered with the same Peers, then start as a smaller cluster.
//
// It runs raft.RecoverCluster, which restores the newest snapshot into the
// FSM, replays every log entry after it (committed or not: an entry that
// only this node had may become committed), writes a snapshot of the
// result carrying the new configuration, and deletes the log. Two things
// make that fit this FSM:
//   - raft.RecoverCluster applies commands one at a time, and a bbolt
//     commit (two fsyncs) per entry makes a replay of thousands of
//     entries slow; replayFSM batches them, as Raft's BatchingFSM path
//     does;
//   - it hands the FSM commands only, so the FSM's applied index would
//     stop at the last command, below the snapshot index, if the log ends
//     with a no-op or configuration entry; replayFSM applies that tail
//     too, so the snapshot content and its index agree and the next start
//     needs no restore.
//
// It returns the snapshot it wrote.
func RecoverCluster(cfg RecoverConfig) (*raft.SnapshotMeta, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("--data-dir: must be set")
	}
	if len(cfg.Peers) == 0 {
		return nil, errors.New("--peers: must name at least one node")
	}
	if _, ok := cfg.Peers[cfg.ID]; cfg.ID != "" && !ok {
		return nil, fmt.Errorf("--peers: does not name this node's --id %q", cfg.ID)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "raft.db")); err != nil {
		return nil, fmt.Errorf("--data-dir: %s holds no raft.db: not a node's data directory (%w)", cfg.DataDir, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, removedMarker)); err == nil {
		return nil, fmt.Errorf("--data-dir: this node was removed from its cluster (%s exists); recover another survivor", removedMarker)
	}
	var servers []raft.Server
	for _, id := range sortedKeys(cfg.Peers) {
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(cfg.Peers[id]), Suffrage: raft.Voter})
	}

	logs, err := openLogStore(filepath.Join(cfg.DataDir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("cluster: recover: %w", err)
	}
	defer logs.Close()
	halted := make(chan struct{})
	var f *fsm.FSM
	f, err = fsm.Open(fsm.Config{
		Path:   filepath.Join(cfg.DataDir, "fsm.db"),
		Logger: cfg.Logger,
		// A halted FSM blocks Apply until Close; closing it makes the
		// replay fail instead of hanging.
		OnHalt: func(error) { close(halted); go f.Close() },
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: recover: %w (is the node still running?)", err)
	}
	defer f.Close()
	hl := newHCLog(cfg.Logger)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, DefaultConfig().SnapshotsRetained, hl)
	if err != nil {
		return nil, fmt.Errorf("cluster: recover: snapshot store: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(orDefault(cfg.ID, "recover"))
	rc.Logger = hl
	rfsm := &replayFSM{f: f, logs: logs, halted: halted}
	if err := raft.RecoverCluster(rc, rfsm, logs, logs, snaps, offlineTransport{}, raft.Configuration{Servers: servers}); err != nil {
		if h := f.Halted(); h != nil {
			err = fmt.Errorf("%w (the state machine halted: %w)", err, h)
		}
		return nil, fmt.Errorf("cluster: recover: %w", err)
	}
	list, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("cluster: recover: listing snapshots after recovery: %w", err)
	}
	if len(list) == 0 {
		return nil, errors.New("cluster: recover: no snapshot after recovery")
	}
	return list[0], nil
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// replayFSM is the FSM raft.RecoverCluster replays the log into; see
// RecoverCluster for why it batches and applies the tail.
type replayFSM struct {
	f      *fsm.FSM
	logs   raft.LogStore
	halted chan struct{}
	buf    []*raft.Log
}

const replayBatch = 256

func (r *replayFSM) Apply(l *raft.Log) interface{} {
	r.buf = append(r.buf, l)
	if len(r.buf) == replayBatch {
		r.flush()
	}
	return nil
}

func (r *replayFSM) flush() {
	select {
	case <-r.halted:
	default:
		if len(r.buf) > 0 {
			r.f.ApplyBatch(r.buf)
		}
	}
	r.buf = r.buf[:0]
}

// Snapshot applies what is buffered and the entries after the last
// command (no-ops and configuration changes, which only advance the
// applied index), then snapshots the FSM.
func (r *replayFSM) Snapshot() (raft.FSMSnapshot, error) {
	r.flush()
	first, err := r.logs.FirstIndex()
	if err != nil {
		return nil, err
	}
	last, err := r.logs.LastIndex()
	if err != nil {
		return nil, err
	}
	// Entries between the applied index and the first one in the log are
	// no-ops or configuration changes a snapshot covered.
	for i := max(r.f.AppliedIndex()+1, first); i <= last; i++ {
		l := new(raft.Log)
		if err := r.logs.GetLog(i, l); err != nil {
			return nil, fmt.Errorf("log index %d: %w", i, err)
		}
		r.Apply(l)
	}
	r.flush()
	select {
	case <-r.halted:
		return nil, fmt.Errorf("%w: %w", fsm.ErrHalted, r.f.Halted())
	default:
	}
	s, err := r.f.Snapshot()
	if err != nil {
		return nil, err
	}
	return &releasingSnapshot{FSMSnapshot: s}, nil
}

// releasingSnapshot releases the FSM snapshot (its bbolt read transaction)
// once persisted: raft.RecoverCluster (v1.7.3) calls Persist but never
// Release, and an open read transaction makes closing the file hang.
type releasingSnapshot struct {
	raft.FSMSnapshot
	once sync.Once
}

func (s *releasingSnapshot) Persist(sink raft.SnapshotSink) error {
	defer s.Release()
	return s.FSMSnapshot.Persist(sink)
}

func (s *releasingSnapshot) Release() { s.once.Do(s.FSMSnapshot.Release) }

func (r *replayFSM) Restore(rc io.ReadCloser) error {
	r.buf = r.buf[:0]
	return r.f.Restore(rc)
}
