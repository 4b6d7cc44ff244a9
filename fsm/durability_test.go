package fsm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// fakeBoot points bootID at a file holding id, for the rest of the test.
func fakeBoot(t *testing.T, id string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "boot_id")
	if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := bootIDPath
	bootIDPath = p
	t.Cleanup(func() { bootIDPath = old })
}

// openDeferred opens path with deferred fsync and applies configuration
// entries (which advance the applied index) up to index n.
func openDeferred(t *testing.T, path string, n uint64) *FSM {
	t.Helper()
	f, err := Open(Config{Path: path, SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := f.AppliedIndex() + 1; i <= n; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogConfiguration})
	}
	if len(logs) > 0 {
		f.ApplyBatch(logs)
	}
	if got := f.AppliedIndex(); got != n {
		t.Fatalf("applied %d, want %d", got, n)
	}
	return f
}

// crash ends f as a killed process would: the file is closed by the
// kernel, nothing is synced and the marker is left as it was.
func crash(t *testing.T, f *FSM) {
	t.Helper()
	f.Stop()
	f.syncDone.Wait()
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	f.db = nil
}

func marker(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(markerPath(path))
	if err != nil {
		return "none"
	}
	return strings.Fields(string(b))[0]
}

// TestDeferredSyncTrustsAProcessCrash: after a crash of the process alone
// (same boot) the file holds every commit, unsynced or not, and is kept.
func TestDeferredSyncTrustsAProcessCrash(t *testing.T) {
	fakeBoot(t, "boot-a")
	path := filepath.Join(t.TempDir(), "fsm.db")
	f := openDeferred(t, path, 5)
	if !f.db.NoSync || marker(t, path) != markerOpen {
		t.Fatalf("deferred sync: NoSync=%v marker %q, want true and %q", f.db.NoSync, marker(t, path), markerOpen)
	}
	crash(t, f)
	f = openDeferred(t, path, 5)
	defer f.Close()
	if f.Rebuilt() {
		t.Fatal("a file left by a crashed process of the same boot was rebuilt")
	}
}

// TestDeferredSyncRebuildsAfterAMachineCrash: a file left open with
// unsynced commits by another boot may be torn, so Open removes it and
// starts empty (the node then restores the newest snapshot and replays
// the log); a file closed cleanly is kept whatever the boot.
func TestDeferredSyncRebuildsAfterAMachineCrash(t *testing.T) {
	fakeBoot(t, "boot-a")
	path := filepath.Join(t.TempDir(), "fsm.db")
	crash(t, openDeferred(t, path, 7))
	fakeBoot(t, "boot-b")
	f, err := Open(Config{Path: path, SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Rebuilt() || f.AppliedIndex() != 0 {
		t.Fatalf("after a machine crash: rebuilt=%v applied=%d, want true and 0", f.Rebuilt(), f.AppliedIndex())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	f = openDeferred(t, path, 3)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := marker(t, path); got != markerClean {
		t.Fatalf("after Close the marker says %q, want %q", got, markerClean)
	}
	fakeBoot(t, "boot-c")
	f = openDeferred(t, path, 3)
	defer f.Close()
	if f.Rebuilt() {
		t.Fatal("a cleanly closed file was rebuilt after a reboot")
	}
}

// TestUntrustedMarkers: a marker that says a sync failed, or that cannot
// be read, makes Open rebuild; with every commit fsynced (SyncInterval 0)
// no marker is left behind and commits are synced.
func TestUntrustedMarkers(t *testing.T) {
	fakeBoot(t, "boot-a")
	for name, content := range map[string]string{"sync failed": "untrusted boot-a\n", "garbage": "???"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fsm.db")
			crash(t, openDeferred(t, path, 4))
			if err := os.WriteFile(markerPath(path), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := Open(Config{Path: path, SyncInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if !f.Rebuilt() || f.AppliedIndex() != 0 {
				t.Fatalf("rebuilt=%v applied=%d, want true and 0", f.Rebuilt(), f.AppliedIndex())
			}
		})
	}
	path := filepath.Join(t.TempDir(), "fsm.db")
	crash(t, openDeferred(t, path, 2))
	f, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Rebuilt() || f.AppliedIndex() != 2 || f.db.NoSync || marker(t, path) != "none" {
		t.Fatalf("fsync every commit: rebuilt=%v applied=%d NoSync=%v marker %q; want false, 2, false, none",
			f.Rebuilt(), f.AppliedIndex(), f.db.NoSync, marker(t, path))
	}
}

// TestDeferredSyncLoopSyncs: the loop fsyncs while the FSM runs.
func TestDeferredSyncLoopSyncs(t *testing.T) {
	fakeBoot(t, "boot-a")
	f, err := Open(Config{Path: filepath.Join(t.TempDir(), "fsm.db"), SyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	deadline := time.Now().Add(30 * time.Second)
	for f.DeferredSyncs() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no deferred fsync within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFailedFsyncHaltsAndRebuilds: when the deferred fsync fails, the
// kernel may have dropped the writes it could not make durable, so the FSM
// halts (reads fail) and marks the file untrusted, and the next Open
// rebuilds it instead of trusting it.
func TestFailedFsyncHaltsAndRebuilds(t *testing.T) {
	fakeBoot(t, "boot-a")
	old := fdatasync
	t.Cleanup(func() { fdatasync = old })
	fdatasync = func(*bbolt.DB) error { return errors.New("EIO (injected)") }
	path := filepath.Join(t.TempDir(), "fsm.db")
	halted := make(chan error, 1)
	f, err := Open(Config{Path: path, SyncInterval: 10 * time.Millisecond, OnHalt: func(err error) { halted <- err }})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-halted:
		if !strings.Contains(err.Error(), "EIO (injected)") || !strings.Contains(err.Error(), "fsync") {
			t.Errorf("halt reason %q does not name the failed fsync", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no halt within 30s of a failing fsync")
	}
	if err := f.View(func(*Reader) error { return nil }); !errors.Is(err, ErrHalted) {
		t.Errorf("a read after the failed fsync: %v, want ErrHalted", err)
	}
	if got := marker(t, path); got != markerUntrusted {
		t.Errorf("marker %q after a failed fsync, want %q", got, markerUntrusted)
	}
	_ = f.Close()
	if got := marker(t, path); got != markerUntrusted {
		t.Errorf("Close rewrote the marker to %q after a failed fsync", got)
	}
	fdatasync = old
	f, err = Open(Config{Path: path, SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.Rebuilt() {
		t.Fatal("a file whose fsync failed was trusted on the next open")
	}
}
