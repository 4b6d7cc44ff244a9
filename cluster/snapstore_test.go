package cluster

import (
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// TestSnapStoreRemembersTheNewestConfigIndex: the configuration index that
// membership checks use follows every snapshot that completes, ignores one
// that is cancelled, and is read back from disk on open.
func TestSnapStoreRemembersTheNewestConfigIndex(t *testing.T) {
	dir := t.TempDir()
	open := func() *snapStore {
		fss, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return newSnapStore(fss)
	}
	s := open()
	if got := s.newestConfigIndex(); got != 0 {
		t.Fatalf("empty store: %d, want 0", got)
	}
	cfg := raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: "127.0.0.1:1", Suffrage: raft.Voter}}}
	_, trans := raft.NewInmemTransport("")
	snap := func(index, configIndex uint64, keep bool) {
		sink, err := s.Create(raft.SnapshotVersionMax, index, 1, cfg, configIndex, trans)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sink.Write([]byte("state")); err != nil {
			t.Fatal(err)
		}
		if keep {
			err = sink.Close()
		} else {
			err = sink.Cancel()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	snap(10, 7, true)
	if got := s.newestConfigIndex(); got != 7 {
		t.Fatalf("after a snapshot with configuration index 7: %d", got)
	}
	snap(20, 15, false)
	if got := s.newestConfigIndex(); got != 7 {
		t.Fatalf("after a cancelled snapshot: %d, want 7", got)
	}
	snap(30, 25, true)
	if got := s.newestConfigIndex(); got != 25 {
		t.Fatalf("after a second snapshot: %d, want 25", got)
	}
	if got := open().newestConfigIndex(); got != 25 {
		t.Fatalf("reopened: %d, want 25", got)
	}
}
