package offline

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/fsm"
	"github.com/optoutd/optoutd/internal/durable"
	"github.com/optoutd/optoutd/snapfile"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

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
func SeedFromBackup(cfg cluster.Config, r io.Reader) (*snapfile.Header, error) {
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

func seedInto(dir string, cfg cluster.Config, r io.Reader) (*snapfile.Header, error) {
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
	for _, id := range slices.Sorted(maps.Keys(cfg.InitialCluster)) {
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(cfg.InitialCluster[id]), Suffrage: raft.Voter})
	}

	hl := cluster.HCLogger(cfg.Logger)
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
