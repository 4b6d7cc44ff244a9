package fsm

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// The apply step's micro-benchmarks (issue 11): one Set, and one SetBatch
// of 500, each as its own log entry on a real bbolt file (fsync deferred,
// as the node runs it), on a store that grows as they run. Allocation
// counts are reported; speed is compared across commits, never asserted.

func benchApply(b *testing.B, perOp int, cmd func(i int) proto.Message) {
	f, err := Open(Config{Path: filepath.Join(b.TempDir(), "fsm.db"), InitialMmapSize: 64 << 20, SyncInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	initFSM(b, f)
	entries := make([][]byte, b.N)
	for i := range entries {
		data, err := command.Encode(cmd(i), time.Unix(1000, int64(i)))
		if err != nil {
			b.Fatal(err)
		}
		entries[i] = data
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		res, ok := f.Apply(&raft.Log{Index: uint64(i) + 2, Term: 1, Type: raft.LogCommand, Data: entries[i]}).(*fsmv1.Result)
		if !ok || res.ErrorCode != 0 {
			b.Fatalf("entry %d: %v", i, res)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perOp), "ns/record")
}

func BenchmarkApplySet(b *testing.B) {
	benchApply(b, 1, func(i int) proto.Message {
		return &fsmv1.SetCommand{SubjectId: fmt.Sprintf("subject-%d", i), Purpose: "analytics", State: fsmv1.State_STATE_OPTED_OUT,
			Source: "bench", Reason: "load", IdempotencyKey: fmt.Sprintf("key-%d", i), IdempotencyTtlNanos: int64(time.Hour)}
	})
}

func BenchmarkApplySetBatch500(b *testing.B) {
	const n = 500
	benchApply(b, n, func(i int) proto.Message {
		c := &fsmv1.SetBatchCommand{IdempotencyKey: fmt.Sprintf("batch-%d", i), IdempotencyTtlNanos: int64(time.Hour)}
		for j := range n {
			c.Sets = append(c.Sets, &fsmv1.SetCommand{SubjectId: fmt.Sprintf("subject-%d-%d", i, j), Purpose: "analytics",
				State: fsmv1.State_STATE_OPTED_OUT, Source: "import:file.csv", Reason: "observed 2024-03-01T10:00:00Z"})
		}
		return c
	})
}

// BenchmarkCatchUp500x64 is a new node catching up: one ApplyBatch of 64
// entries of SetBatch(500) into an empty store, as hashicorp/raft hands a
// follower committed entries (up to MaxAppendEntries at a time).
func BenchmarkCatchUp500x64(b *testing.B) {
	const entries, n = 64, 500
	logs := make([]*raft.Log, entries)
	for i := range logs {
		c := &fsmv1.SetBatchCommand{IdempotencyKey: fmt.Sprintf("batch-%d", i), IdempotencyTtlNanos: int64(time.Hour)}
		for j := range n {
			c.Sets = append(c.Sets, &fsmv1.SetCommand{SubjectId: fmt.Sprintf("subject-%d-%d", i, j), Purpose: "analytics",
				State: fsmv1.State_STATE_OPTED_OUT, Source: "import:file.csv", Reason: "observed 2024-03-01T10:00:00Z"})
		}
		data, err := command.Encode(c, time.Unix(1000, int64(i)))
		if err != nil {
			b.Fatal(err)
		}
		logs[i] = &raft.Log{Index: uint64(i) + 2, Term: 1, Type: raft.LogCommand, Data: data}
	}
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		f, err := Open(Config{Path: filepath.Join(b.TempDir(), "fsm.db"), InitialMmapSize: 64 << 20, SyncInterval: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		initFSM(b, f)
		b.StartTimer()
		for i, r := range f.ApplyBatch(logs) {
			if res, ok := r.(*fsmv1.Result); !ok || res.ErrorCode != 0 {
				b.Fatalf("entry %d: %v (halted: %v)", i, r, f.Halted())
			}
		}
		b.StopTimer()
		_ = f.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*entries*n), "ns/record")
}
