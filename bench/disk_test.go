package main

import (
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestWalkDiskClassifies(t *testing.T) {
	dir := t.TempDir()
	files := map[string]int{"raft.db": 10000, "fsm.db": 3000, "snapshots/1-2-3/state.bin": 5000, "node-id": 3}
	for name, size := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := walkDisk(dir, optoutdPart)
	if err != nil {
		t.Fatal(err)
	}
	if d.ApparentBytes != 18003 {
		t.Errorf("ApparentBytes = %d, want 18003", d.ApparentBytes)
	}
	for _, part := range []string{"raft log (raft.db)", "state machine (fsm.db)", "snapshots", "other"} {
		if d.Parts[part] <= 0 {
			t.Errorf("part %q = %d, want > 0 (parts %v)", part, d.Parts[part], d.Parts)
		}
	}
	var sum int64
	for _, v := range d.Parts {
		sum += v
	}
	if sum != d.Bytes || d.Bytes < d.ApparentBytes {
		t.Errorf("parts sum %d, Bytes %d, apparent %d", sum, d.Bytes, d.ApparentBytes)
	}
	for rel, want := range map[string]string{"member/wal/0.wal": "wal", "member/snap/db": "backend (member/snap/db)", "member/snap/1.snap": "snapshots", "x": "other"} {
		if got := etcdPart(rel); got != want {
			t.Errorf("etcdPart(%q) = %q, want %q", rel, got, want)
		}
	}
}

func TestBoltBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fsm.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		audit, err := tx.CreateBucket([]byte("audit"))
		if err != nil {
			return err
		}
		for i := 0; i < 2000; i++ {
			if err := audit.Put([]byte{byte(i >> 8), byte(i)}, make([]byte, 100)); err != nil {
				return err
			}
		}
		rec, err := tx.CreateBucket([]byte("records"))
		if err != nil {
			return err
		}
		return rec.Put([]byte("k"), []byte("v"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, _, err := boltBuckets(path)
	if err != nil {
		t.Fatal(err)
	}
	if b["audit"] < 200_000 || b["records"] <= 0 || b["audit"] <= 10*b["records"] {
		t.Errorf("buckets = %v, want audit over 200 kB and far above records", b)
	}
	if _, _, err := boltBuckets(filepath.Join(t.TempDir(), "none.db")); err == nil {
		t.Error("a missing file: no error")
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\toptoutd\nVmPeak:\t  900 kB\nVmHWM:\t  153600 kB\nVmRSS:\t  1000 kB\n"
	if v, ok := parseVmHWM(status); !ok || v != 150<<20 {
		t.Errorf("parseVmHWM = %d, %v; want 150 MiB", v, ok)
	}
	for _, bad := range []string{"", "VmHWM:\t12 MB\n", "VmHWM:\tx kB\n"} {
		if v, ok := parseVmHWM(bad); ok {
			t.Errorf("parseVmHWM(%q) = %d, true", bad, v)
		}
	}
	if v, ok := readVmHWM(os.Getpid()); !ok || v <= 0 {
		t.Skipf("no /proc here (%d, %v)", v, ok)
	}
}

// The probe runs where the data dirs go and returns samples; no timing
// is asserted.
func TestFsyncProbe(t *testing.T) {
	p := probeFsync(t.TempDir(), 5, probeLimit)
	if p.Error != "" || p.Samples != 5 || p.P50Ms <= 0 || p.MaxMs < p.P99Ms || p.P99Ms < p.P50Ms {
		t.Errorf("probeFsync = %+v", p)
	}
	if p := probeFsync(filepath.Join(t.TempDir(), "missing"), 5, probeLimit); p.Error == "" {
		t.Errorf("a missing dir: %+v", p)
	}
}
