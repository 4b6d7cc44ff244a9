package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"github.com/optoutd/optoutd/snapfile"
	"pgregory.net/rapid"
)

// memSink is a raft.SnapshotSink over a buffer.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func openTemp(t testing.TB) *FSM {
	f, err := Open(Config{Path: filepath.Join(t.TempDir(), "fsm.db"), InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// initFSM applies InitCluster with the starter catalog at index 1, as the
// first leader does; writes then start at index 2.
func initFSM(t testing.TB, f *FSM) {
	b, err := command.Encode(&fsmv1.InitClusterCommand{ErasureKey: make([]byte, 32), Purposes: command.PurposeDefs(optoutd.StarterCatalog)}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	f.ApplyBatch([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: b}})
}

func dump(t testing.TB, f *FSM) []optoutd.Record {
	var out []optoutd.Record
	err := f.View(func(r *Reader) error {
		return r.ForEachRecord(func(rec optoutd.Record) error {
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func setLog(t testing.TB, index uint64, subject, purpose string, out bool, stamp int64) *raft.Log {
	st := fsmv1.State_STATE_OPTED_IN
	if out {
		st = fsmv1.State_STATE_OPTED_OUT
	}
	b, err := command.Encode(&fsmv1.SetCommand{SubjectId: subject, Purpose: purpose, State: st, Source: "test"}, time.Unix(0, stamp))
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: b}
}

// TestSnapshotRestoreRoundTrip: for any sequence of writes, restoring a
// snapshot into a fresh FSM yields exactly the same records and index.
func TestSnapshotRestoreRoundTrip(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		src := openTemp(t)
		initFSM(t, src)
		n := rapid.IntRange(0, 60).Draw(rt, "n")
		var logs []*raft.Log
		for i := 2; i <= n+1; i++ {
			subject := rapid.StringMatching(`[a-z\x{00e9}\x00]{1,6}`).Draw(rt, "subject")
			purpose := rapid.SampledFrom([]string{"email_marketing", "analytics", "all"}).Draw(rt, "purpose")
			logs = append(logs, setLog(t, uint64(i), subject, purpose, rapid.Bool().Draw(rt, "out"), rapid.Int64().Draw(rt, "stamp")))
		}
		if len(logs) > 0 {
			src.ApplyBatch(logs)
		}
		snap, err := src.Snapshot()
		if err != nil {
			rt.Fatal(err)
		}
		var sink memSink
		if err := snap.Persist(&sink); err != nil {
			rt.Fatal(err)
		}
		snap.Release()

		dst := openTemp(t)
		initFSM(t, dst)
		dst.ApplyBatch([]*raft.Log{setLog(t, 2, "stale", "analytics", true, 0)}) // must vanish
		if err := dst.Restore(io.NopCloser(&sink)); err != nil {
			rt.Fatal(err)
		}
		if got, want := dst.AppliedIndex(), src.AppliedIndex(); got != want {
			rt.Fatalf("applied index %d after restore, want %d", got, want)
		}
		got, want := dump(t, dst), dump(t, src)
		if len(got) != len(want) {
			rt.Fatalf("%d records after restore, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				rt.Fatalf("record %d: %+v, want %+v", i, got[i], want[i])
			}
		}
		if dg, dw := digest(t, dst), digest(t, src); dg != dw {
			rt.Fatalf("state digest %x after restore, want %x", dg, dw)
		}
	})
}

// TestSnapshotIsConsistentWhileWriting: a snapshot reflects its moment, not
// writes applied while it is being persisted.
func TestSnapshotIsConsistentWhileWriting(t *testing.T) {
	f := openTemp(t)
	initFSM(t, f)
	f.ApplyBatch([]*raft.Log{setLog(t, 2, "u1", "analytics", true, 1)})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(3); i < 200; i++ {
			f.ApplyBatch([]*raft.Log{setLog(t, i, "u2", "analytics", false, int64(i))})
		}
	}()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	<-done

	dst := openTemp(t)
	if err := dst.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if dst.AppliedIndex() != 2 {
		t.Fatalf("snapshot applied index %d, want 2", dst.AppliedIndex())
	}
	if recs := dump(t, dst); len(recs) != 1 || recs[0].SubjectID != "u1" {
		t.Fatalf("snapshot holds %+v, want only u1", recs)
	}
	if f.AppliedIndex() != 199 {
		t.Fatalf("writer stopped at %d", f.AppliedIndex())
	}
}

// TestRestoreRejectsBadSnapshot: a truncated or garbage snapshot is refused
// and the live state is untouched.
func TestRestoreRejectsBadSnapshot(t *testing.T) {
	src := openTemp(t)
	initFSM(t, src)
	var logs []*raft.Log
	for i := uint64(2); i <= 500; i++ {
		logs = append(logs, setLog(t, i, strings.Repeat("s", int(i%50)+1), "analytics", true, int64(i)))
	}
	src.ApplyBatch(logs)
	var good bytes.Buffer
	if _, err := src.WriteSnapshot(&good); err != nil {
		t.Fatal(err)
	}

	for name, data := range map[string][]byte{
		"empty":     nil,
		"garbage":   bytes.Repeat([]byte{0xAB}, 8192),
		"truncated": good.Bytes()[:good.Len()/2],
		"header":    good.Bytes()[:4096],
	} {
		t.Run(name, func(t *testing.T) {
			dst := openTemp(t)
			initFSM(t, dst)
			dst.ApplyBatch([]*raft.Log{setLog(t, 2, "keep", "analytics", true, 7)})
			if err := dst.Restore(io.NopCloser(bytes.NewReader(data))); err == nil {
				t.Fatal("Restore accepted a bad snapshot")
			}
			recs := dump(t, dst)
			if len(recs) != 1 || recs[0].SubjectID != "keep" || dst.AppliedIndex() != 2 {
				t.Fatalf("state after refused restore: %+v at %d", recs, dst.AppliedIndex())
			}
			if _, err := os.Stat(dst.cfg.Path + ".restore"); !os.IsNotExist(err) {
				t.Fatalf("temporary restore file left behind: %v", err)
			}
		})
	}
}

func digest(t testing.TB, f *FSM) [32]byte {
	var sum [32]byte
	err := f.View(func(r *Reader) (err error) {
		sum, _, err = r.Digest()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestBackupHeaderDescribesTheState: a backup's header names its index,
// term, record count and time, and snapfile.Verify catches any damage.
func TestBackupHeaderDescribesTheState(t *testing.T) {
	f := openTemp(t)
	initFSM(t, f)
	var logs []*raft.Log
	for i := uint64(2); i <= 41; i++ {
		l := setLog(t, i, fmt.Sprintf("s%d", i), "analytics", true, int64(i))
		l.Term = 7
		logs = append(logs, l)
	}
	f.ApplyBatch(logs)
	var buf bytes.Buffer
	at := time.Unix(1700000000, 0)
	if _, err := f.WriteBackup(&buf, at); err != nil {
		t.Fatal(err)
	}
	hdr, err := snapfile.Verify(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if hdr.AppliedIndex != 41 || hdr.AppliedTerm != 7 || hdr.Records != 40 || hdr.CreatedAtUnixNanos != at.UnixNano() {
		t.Fatalf("header %+v", hdr)
	}
	bad := bytes.Clone(buf.Bytes())
	bad[len(bad)/2] ^= 0xff
	if _, err := snapfile.Verify(bytes.NewReader(bad)); !errors.Is(err, snapfile.ErrBadSnapshot) {
		t.Fatalf("flipped byte: %v", err)
	}
	if _, err := snapfile.Verify(bytes.NewReader(buf.Bytes()[:buf.Len()-10])); !errors.Is(err, snapfile.ErrBadSnapshot) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := snapfile.Verify(io.MultiReader(bytes.NewReader(buf.Bytes()), strings.NewReader("x"))); !errors.Is(err, snapfile.ErrBadSnapshot) {
		t.Fatalf("trailing garbage: %v", err)
	}
}

// TestRestoreDoesNotWaitForAnOpenSnapshot is the regression test of a
// deadlock the chaos suite found: hashicorp/raft's snapshot goroutine can
// hold an FSM snapshot (a read transaction) while it waits for the main Raft
// goroutine, which waits for Restore (InstallSnapshot). Restore must finish
// while that snapshot is still open, and the snapshot must still persist
// the old state afterwards.
func TestRestoreDoesNotWaitForAnOpenSnapshot(t *testing.T) {
	f := openTemp(t)
	initFSM(t, f)
	f.ApplyBatch([]*raft.Log{setLog(t, 2, "old", "analytics", true, 1)})
	open, err := f.Snapshot() // held, like the snapshot goroutine holds it
	if err != nil {
		t.Fatal(err)
	}

	src := openTemp(t)
	initFSM(t, src)
	src.ApplyBatch([]*raft.Log{setLog(t, 2, "new", "analytics", true, 1), setLog(t, 3, "new2", "analytics", true, 1)})
	var stream bytes.Buffer
	if _, err := src.WriteSnapshot(&stream); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Restore(io.NopCloser(&stream)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Restore waited for a snapshot that was still open: the InstallSnapshot deadlock")
	}
	if recs := dump(t, f); len(recs) != 2 || f.AppliedIndex() != 3 {
		t.Fatalf("after restore: %+v at %d", recs, f.AppliedIndex())
	}
	var sink memSink
	if err := open.Persist(&sink); err != nil {
		t.Fatalf("the snapshot opened before the restore could not persist: %v", err)
	}
	open.Release()
	old := openTemp(t)
	if err := old.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if recs := dump(t, old); len(recs) != 1 || recs[0].SubjectID != "old" {
		t.Fatalf("the open snapshot should hold the old state, holds %+v", recs)
	}
}
