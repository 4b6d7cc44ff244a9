package fsm

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/snapfile"
)

// TestSlowBackupBlocksNeitherReadsNorRestore: a backup download whose
// reader stalls (a slow client) must not hold the lock that Restore
// (InstallSnapshot) needs, nor make new reads queue behind that Restore.
// Before the fix WriteBackup streamed inside View, holding the read lock
// for the whole transfer; Restore then waited for the write lock and every
// new View waited behind it.
func TestSlowBackupBlocksNeitherReadsNorRestore(t *testing.T) {
	f := openTemp(t)
	initFSM(t, f)
	f.ApplyBatch([]*raft.Log{setLog(t, 2, "u1", "analytics", true, 1), setLog(t, 3, "u2", "analytics", false, 2)})
	var snap bytes.Buffer
	if _, err := f.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	f.ApplyBatch([]*raft.Log{setLog(t, 4, "u3", "analytics", true, 3)})

	pr, pw := io.Pipe()
	t.Cleanup(func() { _ = pr.Close() }) // unblocks the backup if the test fails
	backup := make(chan error, 1)
	go func() {
		_, err := f.WriteBackup(pw, time.Unix(100, 0))
		_ = pw.CloseWithError(err)
		backup <- err
	}()
	// The backup has started and is now stuck on its reader.
	first := make([]byte, 1)
	if _, err := io.ReadFull(pr, first); err != nil {
		t.Fatal(err)
	}

	restored := make(chan error, 1)
	go func() { restored <- f.Restore(io.NopCloser(bytes.NewReader(snap.Bytes()))) }()
	viewed := make(chan error, 1)
	go func() { viewed <- f.View(func(r *Reader) error { return nil }) }()
	for name, ch := range map[string]chan error{"Restore": restored, "View": viewed} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s waited for the stalled backup download", name)
		}
	}
	if got := f.AppliedIndex(); got != 3 {
		t.Fatalf("applied index after restore: %d, want 3", got)
	}
	// The stalled backup, once read, is the state it started from (index 4).
	rest, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-backup; err != nil {
		t.Fatal(err)
	}
	hdr, err := snapfile.Verify(bytes.NewReader(append(first, rest...)))
	if err != nil {
		t.Fatalf("the backup taken across the restore is not a valid file: %v", err)
	}
	if hdr.AppliedIndex != 4 {
		t.Fatalf("backup holds index %d, want 4", hdr.AppliedIndex)
	}
}
