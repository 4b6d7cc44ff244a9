package cluster

import (
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// snapStore is raft's file snapshot store, remembering the configuration
// index of its newest snapshot so that membership checks (one per peer
// request) do not list the snapshot directory, which reads every
// snapshot's meta file from disk. The remembered index is refreshed when a
// snapshot sink closes, which hashicorp/raft does before it compacts the
// log (takeSnapshot, installSnapshot): while the configuration entries are
// still in the log, configLog knows them, and by the time they are gone
// the index here covers them.
type snapStore struct {
	*raft.FileSnapshotStore
	configIndex atomic.Uint64
}

func newSnapStore(s *raft.FileSnapshotStore) *snapStore {
	st := &snapStore{FileSnapshotStore: s}
	st.refresh()
	return st
}

// refresh rereads the newest snapshot's configuration index.
func (s *snapStore) refresh() {
	if snaps, err := s.List(); err == nil && len(snaps) > 0 {
		s.configIndex.Store(snaps[0].ConfigurationIndex)
	}
}

// newestConfigIndex is the configuration index of the newest snapshot, 0
// when there is none.
func (s *snapStore) newestConfigIndex() uint64 { return s.configIndex.Load() }

func (s *snapStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.FileSnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &refreshingSink{SnapshotSink: sink, store: s}, nil
}

type refreshingSink struct {
	raft.SnapshotSink
	store *snapStore
}

func (r *refreshingSink) Close() error {
	err := r.SnapshotSink.Close()
	r.store.refresh()
	return err
}
