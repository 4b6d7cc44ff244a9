package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/optoutd/optoutd/internal/durable"
	"go.etcd.io/bbolt"
)

// Deferred fsync of fsm.db (see DESIGN.md, "When fsm.db is fsynced").
//
// With Config.SyncInterval > 0, a commit of applied entries is written to
// the file without fsync, and the file is fsynced every SyncInterval and on
// Close. A process crash loses nothing (the kernel holds the writes); a
// crash of the machine may leave the file torn. A small marker file next
// to fsm.db says which: it names the boot during which the file was last
// open for writing, and whether it was closed cleanly. Open trusts the file
// unless the marker says it was open, unsynced, during another boot (or a
// sync failed), in which case it removes the file and starts empty: the
// node then restores the newest snapshot (durable: hashicorp/raft fsyncs
// it) and Raft replays the log after it, which it keeps.

// Marker states.
const (
	markerOpen      = "open"      // unsynced commits possible since this boot
	markerClean     = "clean"     // synced and closed
	markerUntrusted = "untrusted" // a sync failed: the file may be stale
)

// bootIDPath names the running kernel's boot; a variable for tests.
var bootIDPath = "/proc/sys/kernel/random/boot_id"

// fdatasync flushes a state file; a variable so tests can make it fail.
var fdatasync = (*bbolt.DB).Sync

// bootID is the running kernel's boot id, or "" where there is none (the
// FSM then fsyncs every commit).
func bootID() string {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func markerPath(dbPath string) string { return dbPath + ".sync" }

// readMarker returns the marker's state and boot id; ok is false when
// there is no marker (a new file, or one written by a build that fsynced
// every commit, which is trusted).
func readMarker(dbPath string) (state, boot string, ok bool, err error) {
	b, err := os.ReadFile(markerPath(dbPath))
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("fsm: read %s: %w", markerPath(dbPath), err)
	}
	f := strings.Fields(string(bytes.TrimSpace(b)))
	if len(f) != 2 {
		// Unreadable: trust nothing that depends on it.
		return markerUntrusted, "", true, nil
	}
	return f[0], f[1], true, nil
}

// writeMarker replaces the marker durably.
func writeMarker(dbPath, state, boot string) error {
	if err := durable.WriteFile(markerPath(dbPath), []byte(state+" "+boot+"\n"), 0o600); err != nil {
		return fmt.Errorf("fsm: write %s: %w", markerPath(dbPath), err)
	}
	return nil
}

// distrust removes a state file that may be torn: the marker says it was
// open with unsynced commits during another boot, or that a sync failed.
// It reports whether it did.
func distrust(dbPath, boot string) (bool, string, error) {
	state, was, ok, err := readMarker(dbPath)
	if err != nil || !ok {
		return false, "", err
	}
	var why string
	switch {
	case state == markerClean:
		return false, "", nil
	case state == markerOpen && was == boot && boot != "":
		return false, "", nil // a process crash: the kernel kept every write
	case state == markerOpen:
		why = "it was open with unsynced commits when the machine restarted"
	default:
		why = "a sync of it failed"
	}
	if err := os.Remove(dbPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, "", fmt.Errorf("fsm: remove untrusted %s: %w", dbPath, err)
	}
	return true, why, nil
}

// syncLoop fsyncs the file every interval until stop. A failed sync marks
// the file untrusted and halts the FSM: the kernel may have dropped the
// writes it could not make durable, so the file must be rebuilt.
func (f *FSM) syncLoop(interval time.Duration) {
	defer f.syncDone.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		if err := f.syncNow(); err != nil {
			f.markHalted(err, "state machine halted: fsm.db could not be fsynced; it is rebuilt from the newest snapshot and the Raft log on restart")
			return
		}
	}
}

// syncNow fsyncs the current file, if writes are deferred.
func (f *FSM) syncNow() error {
	if f.boot == "" {
		return nil
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return nil
	}
	if err := fdatasync(f.db); err != nil {
		_ = writeMarker(f.cfg.Path, markerUntrusted, f.boot)
		return fmt.Errorf("fsm: fsync %s: %w", f.cfg.Path, err)
	}
	f.synced.Add(1)
	return nil
}

// syncAndClearMarker, for a file whose commits are all fsynced from now
// on, makes what an earlier run (a crashed process, this boot) left
// unsynced durable, then removes the marker.
func syncAndClearMarker(db *bbolt.DB, dbPath string) error {
	if _, err := os.Stat(markerPath(dbPath)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := db.Sync(); err != nil {
		return fmt.Errorf("fsm: fsync %s: %w", dbPath, err)
	}
	if err := os.Remove(markerPath(dbPath)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsm: remove %s: %w", markerPath(dbPath), err)
	}
	return nil
}
