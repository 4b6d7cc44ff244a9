package offline

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/fsm"
)

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
	if _, err := os.Stat(filepath.Join(cfg.DataDir, cluster.RemovedMarker)); err == nil {
		return nil, fmt.Errorf("--data-dir: this node was removed from its cluster (%s exists); recover another survivor", cluster.RemovedMarker)
	}
	var servers []raft.Server
	for _, id := range slices.Sorted(maps.Keys(cfg.Peers)) {
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
	hl := cluster.HCLogger(cfg.Logger)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cluster.DefaultConfig().SnapshotsRetained, hl)
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
