package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeOps records calls; keys at "conflict" make a compare-and-set lose.
type fakeOps struct {
	mu       sync.Mutex
	calls    map[string]int
	batches  []int
	written  [][]string
	conflict bool
	noBatch  bool // SetBatch answers errNoBatch, as an optoutd-base before it
}

func (f *fakeOps) note(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
}

func (f *fakeOps) Check(context.Context, string) error { f.note("check"); return nil }
func (f *fakeOps) CheckBatch(_ context.Context, s []string) error {
	f.note("batch")
	f.mu.Lock()
	f.batches = append(f.batches, len(s))
	f.mu.Unlock()
	return nil
}
func (f *fakeOps) Set(_ context.Context, s string, _ uint64) error {
	f.note("set")
	f.mu.Lock()
	f.written = append(f.written, []string{s})
	f.mu.Unlock()
	return nil
}
func (f *fakeOps) SetBatch(_ context.Context, s []string, _ uint64) error {
	f.note("setbatch")
	if f.noBatch {
		return errNoBatch
	}
	f.mu.Lock()
	f.written = append(f.written, append([]string(nil), s...))
	f.mu.Unlock()
	return nil
}
func (f *fakeOps) CAS(context.Context, string, uint64, uint64) (uint64, error) {
	f.note("cas")
	if f.conflict {
		return 0, errConflict
	}
	return 2, nil
}
func (f *fakeOps) Version(context.Context, string) (uint64, error) { f.note("version"); return 1, nil }

func runOps(t *testing.T, wl string, f *fakeOps, n int) *atomic.Int64 {
	t.Helper()
	var writes atomic.Int64
	op := newOp(wl, opSpec{ops: func(int) Ops { return f }, keys: subjects(100), choose: uniformKeys(100), conc: 2, batch: 7, writes: &writes})
	for i := 0; i < n; i++ {
		err := op(context.Background(), i%2, uint64(i))
		if err != nil && !errors.Is(err, errConflict) {
			t.Fatalf("%s: %v", wl, err)
		}
	}
	return &writes
}

// TestImportWritesDistinctKeysPerCall: each import call writes --batch-size
// distinct keys, and the writes are counted per key.
func TestImportWritesDistinctKeysPerCall(t *testing.T) {
	f := &fakeOps{}
	w := runOps(t, wlImport, f, 30)
	if f.calls["setbatch"] != 30 || w.Load() != 30*7 {
		t.Fatalf("import: calls %v, writes %d", f.calls, w.Load())
	}
	for _, b := range f.written {
		seen := map[string]bool{}
		for _, k := range b {
			if seen[k] {
				t.Fatalf("a call wrote %s twice: %v", k, b)
			}
			seen[k] = true
		}
	}
}

// TestPreloadBatchesAndFallsBack: the preload writes every key exactly
// once, in batches where the system has them and one at a time where not.
func TestPreloadBatchesAndFallsBack(t *testing.T) {
	keys := subjects(2500)
	for _, noBatch := range []bool{false, true} {
		f := &fakeOps{noBatch: noBatch}
		var n atomic.Int64
		if err := preload(context.Background(), func(int) Ops { return f }, keys, 3, time.Second, &n); err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, b := range f.written {
			if !noBatch && len(b) > preloadBatch {
				t.Errorf("a batch of %d", len(b))
			}
			for _, k := range b {
				count[k]++
			}
		}
		if len(count) != len(keys) || n.Load() != int64(len(keys)) {
			t.Fatalf("noBatch %v: %d distinct keys written, counter %d, want %d", noBatch, len(count), n.Load(), len(keys))
		}
		for k, c := range count {
			if c != 1 {
				t.Fatalf("noBatch %v: %s written %d times", noBatch, k, c)
			}
		}
		if !noBatch && f.calls["set"] != 0 {
			t.Errorf("batched preload made %d single Sets", f.calls["set"])
		}
		if noBatch && f.calls["set"] != len(keys) {
			t.Errorf("fallback preload made %d single Sets, want %d", f.calls["set"], len(keys))
		}
	}
}

func TestWorkloadOps(t *testing.T) {
	f := &fakeOps{}
	if w := runOps(t, wlCheck, f, 10); f.calls["check"] != 10 || w.Load() != 0 {
		t.Errorf("check: calls %v, writes %d", f.calls, w.Load())
	}
	f = &fakeOps{}
	runOps(t, wlBatch, f, 3)
	if f.calls["batch"] != 3 || f.batches[0] != 7 || f.batches[2] != 7 {
		t.Errorf("batch: calls %v, sizes %v; want 3 calls of 7 keys", f.calls, f.batches)
	}
	f = &fakeOps{}
	if w := runOps(t, wlSet, f, 5); f.calls["set"] != 5 || w.Load() != 5 {
		t.Errorf("set: calls %v, writes %d", f.calls, w.Load())
	}
	// A compare-and-set reads the version first; a conflict is a write
	// that went through the log.
	f = &fakeOps{conflict: true}
	if w := runOps(t, wlCAS, f, 4); f.calls["version"] != 4 || f.calls["cas"] != 4 || w.Load() != 4 {
		t.Errorf("cas: calls %v, writes %d", f.calls, w.Load())
	}
	f = &fakeOps{}
	w := runOps(t, wlMixed, f, 4000)
	if c := f.calls["cas"]; c < 140 || c > 260 || f.calls["check"]+c != 4000 || w.Load() != int64(c) {
		t.Errorf("mixed: calls %v, writes %d; want about 5%% compare-and-sets", f.calls, w.Load())
	}
}

// A compare-and-set conflict is an answer: it counts in ops and latency
// and in Conflicts, never in Errors.
func TestClosedLoopCountsConflictsAsAnswers(t *testing.T) {
	var n atomic.Int64
	var i atomic.Int64
	op := func(context.Context, int, uint64) error {
		switch i.Add(1) % 3 {
		case 0:
			return errConflict
		case 1:
			return errors.New("boom")
		}
		return nil
	}
	run := closedLoop(context.Background(), 1, 0, 100*time.Millisecond, time.Second, &n, op)
	if run.Conflicts == 0 || run.Errors == 0 || run.Ops == 0 {
		t.Fatalf("run = %+v", run)
	}
	if run.Latency.Count != int(run.Ops+run.Late) {
		t.Errorf("latencies %d, ops %d + late %d", run.Latency.Count, run.Ops, run.Late)
	}
	if !strings.Contains(run.FirstError, "boom") {
		t.Errorf("first error %q", run.FirstError)
	}
}
