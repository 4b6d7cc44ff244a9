package fsm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/internal/durable"
	"github.com/optoutd/optoutd/snapfile"
	"go.etcd.io/bbolt"
)

// backupInfo adds the fields only backups carry (counting records costs a
// scan, so Raft's own snapshots skip it).
type backupInfo struct{ createdAt int64 }

// writeSnapshot streams the state as of tx to w in the snapshot file format
// (package snapfile): the bbolt file as of the transaction, framed.
func writeSnapshot(w io.Writer, tx *bbolt.Tx, backup *backupInfo) error {
	hdr := &snapfile.Header{
		AppliedIndex: readU64(tx.Bucket(bucketMeta).Get(keyAppliedIndex)),
		AppliedTerm:  readU64(tx.Bucket(bucketMeta).Get(keyAppliedTerm)),
		StateBytes:   uint64(tx.Size()),
	}
	if backup != nil {
		hdr.Records = uint64(tx.Bucket(bucketRecords).Stats().KeyN)
		hdr.CreatedAtUnixNanos = backup.createdAt
	}
	return snapfile.Write(w, hdr, tx.WriteTo)
}

// Snapshot implements raft.FSM. It only opens a read transaction; the copy
// happens in Persist, while Apply goes on in other transactions. A halted
// FSM refuses: its state lacks the entry it halted on, which hashicorp/raft
// counts as applied.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	tx, err := f.beginRead()
	if err != nil {
		return nil, fmt.Errorf("fsm: snapshot: %w", err)
	}
	return &snapshot{tx: tx}, nil
}

type snapshot struct {
	tx *bbolt.Tx
}

// Persist streams the state as of the snapshot's transaction.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.tx, nil); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release ends the read transaction.
func (s *snapshot) Release() { _ = s.tx.Rollback() }

// WriteSnapshot streams the current state to w in the snapshot format.
func (f *FSM) WriteSnapshot(w io.Writer) (appliedIndex uint64, err error) {
	return f.stream(w, nil)
}

// WriteBackup is WriteSnapshot for a backup file: the header also carries
// the record count and createdAt. It reads one consistent transaction, so
// writes continue while it streams.
func (f *FSM) WriteBackup(w io.Writer, createdAt time.Time) (appliedIndex uint64, err error) {
	return f.stream(w, &backupInfo{createdAt: createdAt.UnixNano()})
}

// stream writes one read transaction to w. The lock is held only to begin
// the transaction, as in Snapshot: a slow reader of w (a backup download)
// must not keep Restore (InstallSnapshot) from swapping the file, nor make
// every new View queue behind that Restore. The transaction keeps the file
// it began on readable; Restore closes a replaced file only once its last
// transaction ends.
func (f *FSM) stream(w io.Writer, backup *backupInfo) (uint64, error) {
	tx, err := f.beginRead()
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	r, err := newReader(tx)
	if err != nil {
		return 0, err
	}
	return r.AppliedIndex(), writeSnapshot(w, tx, backup)
}

// beginRead starts a read transaction under the lock and returns it; the
// caller rolls it back.
func (f *FSM) beginRead() (*bbolt.Tx, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.Halted(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHalted, err)
	}
	if f.db == nil {
		return nil, errors.New("fsm: closed")
	}
	return f.db.Begin(false)
}

// Restore implements raft.FSM: it replaces the whole state with the
// snapshot in rc. The stream is checked (framing, length, SHA-256) while it
// is written to a temporary file, which is fsynced and opened once more
// before it is renamed over the live file. A bad snapshot returns an error
// and leaves the current state untouched.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer func() { _ = rc.Close() }()
	tmp := f.cfg.Path + ".restore"
	hdr, err := snapfile.ReadToFile(rc, tmp)
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("fsm: restore: %w", err)
	}
	db, idx, err := openDB(tmp, f.cfg.InitialMmapSize)
	if err == nil {
		err = db.Close()
	}
	if err == nil && idx != hdr.AppliedIndex {
		err = fmt.Errorf("state says applied index %d, header says %d", idx, hdr.AppliedIndex)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("fsm: restore: snapshot holds no valid state: %w", err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	// Rename over the live file while it is still open: the old inode lives
	// on for whoever still reads it. Closing the old database must not be
	// waited for here. A Raft snapshot in progress holds a read transaction
	// on it, and hashicorp/raft's snapshot goroutine may be waiting on the
	// main Raft goroutine, which waits for this Restore (InstallSnapshot):
	// waiting would deadlock all three.
	if err := os.Rename(tmp, f.cfg.Path); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if err := durable.SyncDir(filepath.Dir(f.cfg.Path)); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	db, idx, err = openDB(f.cfg.Path, f.cfg.InitialMmapSize)
	if err != nil {
		return fmt.Errorf("fsm: restore: reopen: %w", err)
	}
	db.NoSync = f.boot != "" // the marker still says "open" for this boot
	if old := f.db; old != nil {
		f.closing.Add(1)
		go func() {
			defer f.closing.Done()
			if err := old.Close(); err != nil {
				f.log.Warn("closing the replaced state file", "err", err)
			}
		}()
	}
	f.db = db
	f.loadLastStamp()
	f.log.Info("state machine restored from snapshot", "applied_index", idx)
	f.advance(idx)
	return nil
}
