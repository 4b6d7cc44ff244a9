package history

import (
	"bytes"
	"reflect"
	"sync"
	"testing"
)

func TestRecorderAndJSONLRoundTrip(t *testing.T) {
	r := NewRecorder()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call := r.Now()
			r.Add(Op{Worker: i, Type: Write, Key: "k", Tag: "t", Call: call, Return: r.Now(), Outcome: OK, Version: uint64(i + 1)})
		}()
	}
	wg.Wait()
	exp := uint64(3)
	r.Add(Op{Type: CAS, Expected: &exp, Outcome: Unknown, Call: r.Now(), Return: r.Now()})
	ops := r.Ops()
	if len(ops) != 9 || r.Len() != 9 || len(r.Since(7)) != 2 || r.Since(20) != nil {
		t.Fatalf("recorder lost ops: %d", len(ops))
	}
	seen := map[int]bool{}
	for _, op := range ops {
		if seen[op.Index] || op.Return < op.Call {
			t.Fatalf("bad op %+v", op)
		}
		seen[op.Index] = true
	}
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, ops); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSONL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	byIndex := map[int]Op{}
	for _, op := range back {
		byIndex[op.Index] = op
	}
	for _, op := range ops {
		if !reflect.DeepEqual(byIndex[op.Index], op) {
			t.Fatalf("round trip changed op: %+v vs %+v", byIndex[op.Index], op)
		}
	}
	for i := 1; i < len(back); i++ {
		if back[i].Call < back[i-1].Call {
			t.Fatal("history.jsonl is not sorted by call time")
		}
	}
	if _, err := ReadJSONL(bytes.NewBufferString("{not json")); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestTypes(t *testing.T) {
	for _, c := range []struct {
		t           Type
		read, write bool
	}{{Get, true, false}, {Check, true, false}, {Write, false, true}, {CAS, false, true}, {Add, false, true}} {
		if c.t.IsRead() != c.read || c.t.IsWrite() != c.write {
			t.Errorf("%s: read %v write %v", c.t, c.t.IsRead(), c.t.IsWrite())
		}
	}
}
