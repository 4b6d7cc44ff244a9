package fsm

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/command/commandtest"
	"github.com/optoutd/optoutd/snapfile"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// The snapshot stream outlives binaries too: a backup file made by one
// release is restored by later ones, and a follower restores what an older
// leader sent. testdata/snapshots/*.snap were written by the code of the
// snapshot format they are named after, from the state that the frozen
// commands of command/testdata/commands/v3.txt produce; like the command
// fixtures, they are never regenerated. -write-snapshot-fixtures writes
// missing ones.
var writeSnapshotFixtures = flag.Bool("write-snapshot-fixtures", false, "write testdata/snapshots/*.snap if missing")

// snapshotFixtureCreatedAt is the backup fixture's creation time.
var snapshotFixtureCreatedAt = time.Unix(1700000000, 0)

// snapshotFixtures: the backup-file form (with record count and creation
// time) and the Raft-snapshot form of the same state.
var snapshotFixtures = map[string]func(*FSM, *bytes.Buffer) error{
	"backup-v1.snap": func(f *FSM, w *bytes.Buffer) error {
		_, err := f.WriteBackup(w, snapshotFixtureCreatedAt)
		return err
	},
	"raft-v1.snap": func(f *FSM, w *bytes.Buffer) error {
		s, err := f.Snapshot()
		if err != nil {
			return err
		}
		defer s.Release()
		sink := &memSink{}
		if err := s.Persist(sink); err != nil {
			return err
		}
		_, err = w.Write(sink.Bytes())
		return err
	},
}

// fixtureState applies the frozen format-3 commands in file order, one per
// index from 1, in term 1.
func fixtureState(t *testing.T) *FSM {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(commandtest.Dir(), "v3.txt"))
	if err != nil {
		t.Fatal(err)
	}
	f := openTemp(t)
	var logs []*raft.Log
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		_, hx, _ := strings.Cut(line, " ")
		data, err := hex.DecodeString(hx)
		if err != nil {
			t.Fatalf("bad fixture line %q", line)
		}
		logs = append(logs, &raft.Log{Index: uint64(len(logs) + 1), Term: 1, Type: raft.LogCommand, Data: data})
	}
	f.ApplyBatch(logs)
	if err := f.Halted(); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestWriteSnapshotFixtures(t *testing.T) {
	if !*writeSnapshotFixtures {
		t.Skip("run with -write-snapshot-fixtures to write missing snapshot fixtures")
	}
	f := fixtureState(t)
	for name, write := range snapshotFixtures {
		path := filepath.Join("testdata", "snapshots", name)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		var buf bytes.Buffer
		if err := write(f, &buf); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSnapshotFixturesAreByteIdentical: each fixture still verifies and
// restores to the state the frozen commands produce, and framing its state
// again with this binary's writer gives back the fixture, byte for byte.
func TestSnapshotFixturesAreByteIdentical(t *testing.T) {
	src := fixtureState(t)
	var want [32]byte
	if err := src.View(func(r *Reader) (err error) { want, _, err = r.Digest(); return err }); err != nil {
		t.Fatal(err)
	}
	for name, write := range snapshotFixtures {
		t.Run(name, func(t *testing.T) {
			fixture, err := os.ReadFile(filepath.Join("testdata", "snapshots", name))
			if err != nil {
				t.Fatalf("%v; run go test ./fsm -run TestWriteSnapshotFixtures -write-snapshot-fixtures", err)
			}
			hdr, err := snapfile.Verify(bytes.NewReader(fixture))
			if err != nil {
				t.Fatalf("fixture no longer verifies: %v", err)
			}

			// This binary, streaming the same state, writes the same header.
			var fresh bytes.Buffer
			if err := write(src, &fresh); err != nil {
				t.Fatal(err)
			}
			freshHdr, err := snapfile.Verify(bytes.NewReader(fresh.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(hdr, freshHdr) {
				t.Errorf("header of a fresh stream = %v, fixture's = %v", freshHdr, hdr)
			}

			// Restoring the fixture gives the state the commands produce.
			dst := openTemp(t)
			if err := dst.Restore(nopCloser{bytes.NewReader(fixture)}); err != nil {
				t.Fatal(err)
			}
			var got [32]byte
			if err := dst.View(func(r *Reader) (err error) { got, _, err = r.Digest(); return err }); err != nil {
				t.Fatal(err)
			}
			if got != want || dst.AppliedIndex() != hdr.AppliedIndex {
				t.Errorf("restored state: digest %x at index %d, want %x at %d", got, dst.AppliedIndex(), want, hdr.AppliedIndex)
			}

			// The fixture's state file, streamed again by this binary,
			// is the fixture.
			state := filepath.Join(t.TempDir(), "state.db")
			start := len(fixture) - 32 - int(hdr.StateBytes)
			if err := os.WriteFile(state, fixture[start:len(fixture)-32], 0o600); err != nil {
				t.Fatal(err)
			}
			var backup *backupInfo
			if hdr.CreatedAtUnixNanos != 0 {
				backup = &backupInfo{createdAt: hdr.CreatedAtUnixNanos}
			}
			again := reframe(t, state, backup)
			if !bytes.Equal(again, fixture) {
				t.Errorf("re-framed stream differs from the fixture (%d bytes, fixture %d)", len(again), len(fixture))
			}
		})
	}
}

// reframe streams the state file at path, opened read-only so that it is
// not changed, in the snapshot format.
func reframe(t *testing.T, path string, backup *backupInfo) []byte {
	t.Helper()
	opts := boltOptions(0)
	opts.ReadOnly = true
	db, err := bbolt.Open(path, 0o600, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var buf bytes.Buffer
	if err := db.View(func(tx *bbolt.Tx) error { return writeSnapshot(&buf, tx, backup) }); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
