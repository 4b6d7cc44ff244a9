package fsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// Config configures an FSM.
type Config struct {
	// Path of the bbolt file; created if missing.
	Path string
	// Logger receives the halt report and restore messages.
	Logger *slog.Logger
	// InitialMmapSize is passed to bbolt. A read transaction (a snapshot
	// being streamed) blocks a writer that must grow the mmap, so this is
	// set well above the expected data size; it costs address space only.
	InitialMmapSize int
	// OnHalt, if set, is called once when the FSM halts.
	OnHalt func(error)
	// SyncInterval > 0 defers fsync: commits of applied entries are not
	// fsynced, the file is fsynced this often and on Close, and a file
	// left open with unsynced commits by a machine crash is rebuilt (see
	// durability.go). 0 fsyncs every commit. Deferring needs the kernel's
	// boot id; without one every commit is fsynced.
	SyncInterval time.Duration
}

// DefaultInitialMmapSize is 4 GiB of address space (not memory): room for
// about 5 million records before bbolt must grow the mapping, which makes
// writes wait for open read transactions (a backup or snapshot being
// streamed).
const DefaultInitialMmapSize = 4 << 30

// ErrHalted is returned by reads and waits once the FSM has halted.
var ErrHalted = errors.New("fsm: halted")

// FSM is the replicated state machine. It implements raft.BatchingFSM. Apply
// is called from one goroutine; reads, waits and snapshots may run
// concurrently with it.
type FSM struct {
	cfg Config
	log *slog.Logger

	// mu guards db against the swap in Restore: readers and Apply hold it
	// for reading, Restore for writing.
	mu sync.RWMutex
	db *bbolt.DB

	applied   atomic.Uint64 // last log index whose effects are in db
	lastStamp atomic.Int64  // latest stamp applied (meta last_stamp)

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced whenever applied advances

	// closing counts replaced databases still being closed (see Restore).
	closing sync.WaitGroup

	haltErr  atomic.Pointer[error]
	haltOnce sync.Once
	stop     chan struct{}
	stopOnce sync.Once

	// boot is the boot id the marker names while commits are deferred;
	// "" when every commit is fsynced.
	boot     string
	synced   atomic.Uint64 // deferred fsyncs done
	commits  atomic.Uint64 // transactions of applied entries committed
	syncDone sync.WaitGroup
	// rebuilt: Open removed an untrusted file and started empty.
	rebuilt bool
}

var _ raft.BatchingFSM = (*FSM)(nil)

// Open opens (or creates) the state machine's bbolt file.
func Open(cfg Config) (*FSM, error) {
	if cfg.Path == "" {
		return nil, errors.New("fsm: Config.Path is empty")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.InitialMmapSize == 0 {
		cfg.InitialMmapSize = DefaultInitialMmapSize
	}
	f := &FSM{cfg: cfg, log: cfg.Logger, notify: make(chan struct{}), stop: make(chan struct{})}
	boot := bootID()
	removed, why, err := distrust(cfg.Path, boot)
	if err != nil {
		return nil, err
	}
	if removed {
		f.rebuilt = true
		f.log.Warn("state file removed: "+why+", so it may be torn; it is rebuilt from the newest snapshot and the Raft log",
			"path", cfg.Path)
	}
	db, idx, err := openDB(cfg.Path, cfg.InitialMmapSize)
	if err != nil {
		return nil, err
	}
	f.db = db
	if cfg.SyncInterval > 0 && boot != "" {
		if err := writeMarker(cfg.Path, markerOpen, boot); err != nil {
			_ = db.Close()
			return nil, err
		}
		f.boot = boot
		db.NoSync = true
		f.syncDone.Add(1)
		go f.syncLoop(cfg.SyncInterval)
	} else if err := syncAndClearMarker(db, cfg.Path); err != nil {
		_ = db.Close()
		return nil, err
	}
	f.applied.Store(idx)
	f.loadLastStamp()
	return f, nil
}

// Rebuilt reports whether Open found the file untrusted and started empty.
func (f *FSM) Rebuilt() bool { return f.rebuilt }

// Commits is the bbolt transactions of applied entries committed so far
// (ApplyBatch splits a large batch into several; see maxTxBytes).
func (f *FSM) Commits() uint64 { return f.commits.Load() }

// DeferredSyncs counts the fsyncs done by the deferred-sync loop.
func (f *FSM) DeferredSyncs() uint64 { return f.synced.Load() }

// loadLastStamp reads the latest applied stamp from the file (after Open
// and Restore). A file written before it was recorded has none: 0.
func (f *FSM) loadLastStamp() {
	_ = f.db.View(func(tx *bbolt.Tx) error {
		f.lastStamp.Store(int64(readU64(tx.Bucket(bucketMeta).Get(keyLastStamp))))
		return nil
	})
}

func boltOptions(mmap int) *bbolt.Options {
	return &bbolt.Options{
		Timeout:         time.Second,
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: mmap,
	}
}

// openDB opens path, creates the buckets and checks the storage format.
func openDB(path string, mmap int) (*bbolt.DB, uint64, error) {
	db, err := bbolt.Open(path, 0o600, boltOptions(mmap))
	if err != nil {
		return nil, 0, fmt.Errorf("fsm: open %s: %w", path, err)
	}
	var idx uint64
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyStorageFormat); v != nil {
			if got := readU64(v); got > storageFormat {
				return fmt.Errorf("storage format %d is newer than this binary's %d", got, storageFormat)
			}
		} else if err := meta.Put(keyStorageFormat, u64(storageFormat)); err != nil {
			return err
		}
		idx = readU64(meta.Get(keyAppliedIndex))
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, 0, fmt.Errorf("fsm: init %s: %w", path, err)
	}
	return db, idx, nil
}

// Stop lets a halted Apply return (without applying anything) so that
// hashicorp/raft can shut down: its shutdown waits for the apply goroutine.
// Call it before raft.Shutdown; Close calls it too.
func (f *FSM) Stop() { f.stopOnce.Do(func() { close(f.stop) }) }

// Close stops the FSM and closes the file. A halted Apply returns.
func (f *FSM) Close() error {
	f.Stop()
	f.syncDone.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closing.Wait()
	if f.db == nil {
		return nil
	}
	var err error
	if f.boot != "" && f.Halted() == nil {
		// Sync, then say so; a failed sync leaves the marker "open" (or
		// "untrusted"), so the next Open decides as after a crash.
		if err = fdatasync(f.db); err != nil {
			_ = writeMarker(f.cfg.Path, markerUntrusted, f.boot)
			err = fmt.Errorf("fsm: fsync %s: %w", f.cfg.Path, err)
		}
	}
	if cerr := f.db.Close(); err == nil {
		err = cerr
	}
	if err == nil && f.boot != "" && f.Halted() == nil {
		err = writeMarker(f.cfg.Path, markerClean, f.boot)
	}
	f.db = nil
	return err
}

// AppliedIndex is the last log index whose effects are visible to reads.
// Unlike raft.AppliedIndex, it never runs ahead of this FSM.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Halted returns the reason the FSM stopped applying, or nil.
func (f *FSM) Halted() error {
	if p := f.haltErr.Load(); p != nil {
		return *p
	}
	return nil
}

// WaitApplied blocks until AppliedIndex() >= index, ctx ends, or the FSM
// halts.
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	for {
		f.notifyMu.Lock()
		ch := f.notify
		f.notifyMu.Unlock()
		if f.applied.Load() >= index {
			return nil
		}
		if err := f.Halted(); err != nil {
			return fmt.Errorf("%w: %w", ErrHalted, err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fsm: waiting for index %d (applied %d): %w", index, f.applied.Load(), ctx.Err())
		}
	}
}

// advance publishes a new applied index and wakes waiters.
func (f *FSM) advance(idx uint64) {
	f.applied.Store(idx)
	f.wake()
}

func (f *FSM) wake() {
	f.notifyMu.Lock()
	close(f.notify)
	f.notify = make(chan struct{})
	f.notifyMu.Unlock()
}

// halt records err, reports it loudly and blocks until Stop: the entry that
// caused it is never skipped, so this node applies nothing more until an
// operator fixes the cause (usually by upgrading the binary). Once Stop has
// been called it returns at once; nothing is applied after a halt, and
// Snapshot refuses, so hashicorp/raft (which then believes the batch was
// applied) can never compact the unapplied entry away.
func (f *FSM) halt(index uint64, err error) {
	f.markHalted(fmt.Errorf("log index %d: %w", index, err),
		"state machine halted: refusing to skip a log entry it cannot apply; upgrade or repair this node")
	<-f.stop
}

// markHalted records a halt without waiting (halt waits; the sync loop
// does not apply entries, so it must not).
func (f *FSM) markHalted(err error, msg string) {
	f.haltOnce.Do(func() {
		f.haltErr.Store(&err)
		f.log.Error(msg, "error", err)
		if f.cfg.OnHalt != nil {
			f.cfg.OnHalt(err)
		}
		f.wake()
	})
}

// View runs fn in a read transaction over the current state.
func (f *FSM) View(fn func(*Reader) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.Halted(); err != nil {
		return fmt.Errorf("%w: %w", ErrHalted, err)
	}
	if f.db == nil {
		return errors.New("fsm: closed")
	}
	return f.db.View(func(tx *bbolt.Tx) error {
		r, err := newReader(tx)
		if err != nil {
			return err
		}
		return fn(r)
	})
}

// DiskSize is the size of the bbolt file in bytes.
func (f *FSM) DiskSize() int64 {
	st, err := os.Stat(f.cfg.Path)
	if err != nil {
		return 0
	}
	return st.Size()
}
