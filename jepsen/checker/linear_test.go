package checker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/optoutd/optoutd/jepsen/history"
)

// hb builds hand-written histories for one key.
type hb struct{ ops []history.Op }

func u64(v uint64) *uint64 { return &v }

func (b *hb) add(op history.Op) *hb {
	op.Index = len(b.ops)
	op.Key = "k"
	op.Process = len(b.ops)
	op.Worker = len(b.ops)
	b.ops = append(b.ops, op)
	return b
}

func (b *hb) write(call, ret int64, tag string, out history.Outcome, v uint64) *hb {
	return b.add(history.Op{Type: history.Write, Tag: tag, State: "opted_out", Call: call, Return: ret, Outcome: out, Version: v})
}

func (b *hb) cas(call, ret int64, tag string, exp uint64, out history.Outcome, v uint64) *hb {
	return b.add(history.Op{Type: history.CAS, Tag: tag, State: "opted_in", Expected: u64(exp), Call: call, Return: ret, Outcome: out, Version: v})
}

func (b *hb) writeIn(call, ret int64, tag string, out history.Outcome, v uint64) *hb {
	return b.add(history.Op{Type: history.Write, Tag: tag, State: "opted_in", Call: call, Return: ret, Outcome: out, Version: v})
}

func (b *hb) get(call, ret int64, tag string, v uint64) *hb {
	if tag == "" {
		return b.add(history.Op{Type: history.Get, Call: call, Return: ret, Outcome: history.NotFound})
	}
	st := "opted_out"
	if tag[0] == 'c' || tag[0] == 'i' { // tags of CAS writes and opt-ins start with c or i
		st = "opted_in"
	}
	return b.add(history.Op{Type: history.Get, Tag: tag, State: st, Call: call, Return: ret, Outcome: history.OK, Version: v})
}

func (b *hb) check(call, ret int64, state string, v uint64) *hb {
	return b.add(history.Op{Type: history.Check, State: state, Call: call, Return: ret, Outcome: history.OK, Version: v})
}

func TestRegisterHandWritten(t *testing.T) {
	cases := []struct {
		name   string
		h      *hb
		want   Verdict
		passes int
	}{
		{"write then read", new(hb).write(0, 10, "a", history.OK, 5).get(20, 30, "a", 5), Linearizable, 1},
		{"read before any write", new(hb).get(0, 5, "", 0).write(10, 20, "a", history.OK, 5), Linearizable, 1},
		{"lost acknowledged write", new(hb).write(0, 10, "a", history.OK, 5).get(20, 30, "", 0), NotLinearizable, 1},
		{"stale read", new(hb).write(0, 10, "a", history.OK, 5).write(20, 30, "b", history.OK, 7).get(40, 50, "a", 5), NotLinearizable, 1},
		{"concurrent read may see old", new(hb).write(0, 10, "a", history.OK, 5).write(20, 30, "b", history.OK, 7).get(25, 35, "a", 5), Linearizable, 1},
		{"read sees wrong version of tag", new(hb).write(0, 10, "a", history.OK, 5).get(20, 30, "a", 6), NotLinearizable, 1},
		{"versions must grow", new(hb).write(0, 10, "a", history.OK, 5).write(20, 30, "b", history.OK, 3), NotLinearizable, 1},
		{"unknown write never seen", new(hb).write(0, 10, "a", history.OK, 5).write(20, 30, "b", history.Unknown, 0).get(40, 50, "a", 5), Linearizable, 1},
		{"unknown write seen late", new(hb).write(0, 10, "a", history.OK, 5).write(20, 30, "b", history.Unknown, 0).get(400, 500, "b", 9), Linearizable, 1},
		{"unknown write seen then unseen", new(hb).write(0, 10, "a", history.OK, 5).write(20, 30, "b", history.Unknown, 0).get(40, 50, "b", 9).get(60, 70, "a", 5), NotLinearizable, 1},
		{"not-applied write seen", new(hb).write(0, 10, "a", history.OK, 5).write(20, 30, "b", history.NotApplied, 0).get(40, 50, "b", 7), NotLinearizable, 1},
		{"read of a tag never written", new(hb).get(0, 10, "zz", 3), NotLinearizable, 1},
		{"cas on current version", new(hb).write(0, 10, "a", history.OK, 5).cas(20, 30, "c1", 5, history.OK, 9).get(40, 50, "c1", 9), Linearizable, 1},
		{"cas on wrong version succeeded", new(hb).write(0, 10, "a", history.OK, 5).cas(20, 30, "c1", 3, history.OK, 9), NotLinearizable, 1},
		{"cas must-not-exist on empty", new(hb).cas(0, 10, "c1", 0, history.OK, 4).get(20, 30, "c1", 4), Linearizable, 1},
		{"cas must-not-exist on existing", new(hb).write(0, 10, "a", history.OK, 5).cas(20, 30, "c1", 0, history.OK, 9), NotLinearizable, 1},
		{"mismatch reports current", new(hb).write(0, 10, "a", history.OK, 5).cas(20, 30, "c1", 3, history.Mismatch, 5), Linearizable, 1},
		{"mismatch reports wrong current", new(hb).write(0, 10, "a", history.OK, 5).cas(20, 30, "c1", 3, history.Mismatch, 4), NotLinearizable, 1},
		{"mismatch although expected matched", new(hb).write(0, 10, "a", history.OK, 5).cas(20, 30, "c1", 5, history.Mismatch, 5), NotLinearizable, 1},
		{"check sees state and version", new(hb).write(0, 10, "a", history.OK, 5).check(20, 30, "opted_out", 5), Linearizable, 1},
		{"check sees wrong state", new(hb).write(0, 10, "a", history.OK, 5).check(20, 30, "opted_in", 5), NotLinearizable, 1},
		{"check sees no record after write", new(hb).write(0, 10, "a", history.OK, 5).check(20, 30, "", 0), NotLinearizable, 1},
		// Only a Check saw the unknown write (by version, not tag): the
		// first pass drops it and fails, the second pass keeps it.
		{"check pins an unseen unknown write", new(hb).write(0, 10, "a", history.OK, 5).write(20, 30, "b", history.Unknown, 0).check(40, 50, "opted_out", 7), Linearizable, 2},
		{"mismatch pins an unseen unknown write, cas uses it", new(hb).write(0, 10, "a", history.OK, 5).write(20, 30, "b", history.Unknown, 0).cas(40, 50, "c1", 5, history.Mismatch, 8).cas(60, 70, "c2", 8, history.OK, 11), Linearizable, 2},
		{"pinned unknown version must stay", new(hb).write(0, 10, "a", history.OK, 5).write(20, 30, "b", history.Unknown, 0).check(40, 50, "opted_out", 7).check(60, 70, "opted_out", 8), NotLinearizable, 2},
		{"unknown cas that could not match", new(hb).write(0, 10, "a", history.OK, 5).cas(20, 30, "c1", 3, history.Unknown, 0).get(40, 50, "c1", 8), NotLinearizable, 1},
		{"unknown cas that matched", new(hb).write(0, 10, "a", history.OK, 5).cas(20, 30, "c1", 5, history.Unknown, 0).get(40, 50, "c1", 8), Linearizable, 1},
		// Deny wins: a blind opt-in cannot replace an opt-out.
		{"blind opt-in over opt-out acknowledged", new(hb).write(0, 10, "a", history.OK, 5).writeIn(20, 30, "i1", history.OK, 7), NotLinearizable, 1},
		{"blind opt-in over opt-out refused", new(hb).write(0, 10, "a", history.OK, 5).writeIn(20, 30, "i1", history.Mismatch, 5).get(40, 50, "a", 5), Linearizable, 1},
		{"blind opt-in refused over an opt-in", new(hb).writeIn(0, 10, "i0", history.OK, 5).writeIn(20, 30, "i1", history.Mismatch, 5), NotLinearizable, 1},
		{"blind opt-in over opt-in", new(hb).writeIn(0, 10, "i0", history.OK, 5).writeIn(20, 30, "i1", history.OK, 7).get(40, 50, "i1", 7), Linearizable, 1},
		{"cas opt-in over opt-out", new(hb).write(0, 10, "a", history.OK, 5).cas(20, 30, "c1", 5, history.OK, 7), Linearizable, 1},
		{"unknown blind opt-in over opt-out seen", new(hb).write(0, 10, "a", history.OK, 5).writeIn(20, 30, "i1", history.Unknown, 0).get(40, 50, "i1", 8), NotLinearizable, 1},
		{"unknown blind opt-in before the opt-out", new(hb).writeIn(0, 30, "i1", history.Unknown, 0).write(5, 40, "a", history.OK, 9).get(50, 60, "a", 9), Linearizable, 1},
		{"read saw a write before it was called", new(hb).get(0, 10, "b", 7).write(20, 30, "b", history.Unknown, 0), NotLinearizable, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, opts := range []Options{DefaultOptions(), {Timeout: time.Minute}} {
				got := CheckKey("k", tc.h.ops, opts)
				if got.Verdict != tc.want {
					t.Fatalf("opts %+v: verdict %s, want %s", opts, got.Verdict, tc.want)
				}
				if opts.DropUnobserved && got.Passes != tc.passes {
					t.Errorf("passes %d, want %d", got.Passes, tc.passes)
				}
			}
		})
	}
}

func TestCheckLinearizablePartitionsByKey(t *testing.T) {
	good := new(hb).write(0, 10, "a", history.OK, 5).get(20, 30, "a", 5).ops
	bad := new(hb).write(0, 10, "b", history.OK, 6).get(20, 30, "", 0).ops
	for i := range bad {
		bad[i].Key = "other"
		bad[i].Index += 100
	}
	// A not-applied write and a failed read are not checked at all.
	extra := []history.Op{
		{Index: 200, Key: "k", Type: history.Write, Tag: "x", Outcome: history.NotApplied, Call: 1, Return: 2},
		{Index: 201, Key: "k", Type: history.Get, Outcome: history.Fail, Call: 1, Return: 2},
		{Index: 202, Key: "set-1", Type: history.Add, Outcome: history.OK, Call: 1, Return: 2},
	}
	all := append(append(append([]history.Op{}, good...), bad...), extra...)
	res := CheckLinearizable(context.Background(), all, DefaultOptions())
	if res.Valid || res.Keys != 2 || len(res.Failed) != 1 || res.Failed[0].Key != "other" {
		t.Fatalf("got %+v", res)
	}
	if res.OpsChecked != 4 {
		t.Fatalf("ops checked %d, want 4", res.OpsChecked)
	}
	if res := CheckLinearizable(context.Background(), good, DefaultOptions()); !res.Valid {
		t.Fatalf("good history failed: %+v", res)
	}
}

func TestTimeoutIsFailure(t *testing.T) {
	if verdictOf(porcupine.Unknown) != TimedOut || verdictOf(porcupine.Ok) != Linearizable || verdictOf(porcupine.Illegal) != NotLinearizable {
		t.Fatal("porcupine answers mapped wrongly")
	}
	res := summarize([]KeyResult{{Key: "a", Verdict: Linearizable}, {Key: "b", Verdict: TimedOut}})
	if res.Valid || len(res.Failed) != 1 || res.Failed[0].Key != "b" {
		t.Fatalf("a timed-out key passed: %+v", res)
	}
	// A history porcupine cannot finish in a nanosecond (or finds
	// illegal) must never come back linearizable.
	b := new(hb)
	for i := 0; i < 30; i++ {
		b.write(int64(i), int64(1000+i), fmt.Sprintf("w%d", i), history.Unknown, 0)
		b.check(int64(i), int64(1000+i), "opted_out", uint64(100+i))
	}
	b.get(2000, 2001, "", 0) // after the writes, a read of no record: illegal
	if r := CheckKey("k", b.ops, Options{Timeout: time.Nanosecond}); r.Verdict == Linearizable {
		t.Fatalf("verdict %s", r.Verdict)
	}
}

// simulate produces a random history of one key from a correct register
// (every op takes effect at a point inside its interval), then corrupts a
// read with probability corrupt.
func simulate(r *rand.Rand, n int, corrupt float64) []history.Op {
	type ev struct {
		op    history.Op
		point int64
		apply bool
	}
	evs := make([]ev, n)
	for i := range evs {
		call := r.Int64N(100)
		ret := call + 1 + r.Int64N(40)
		op := history.Op{Index: i, Process: i, Worker: i, Key: "k", Call: call, Return: ret}
		switch r.IntN(5) {
		case 0, 1:
			op.Type = history.Get
		case 2:
			op.Type = history.Check
		case 3:
			op.Type = history.Write
		default:
			op.Type = history.CAS
		}
		if op.Type.IsWrite() {
			op.Tag = fmt.Sprintf("t%d", i)
			op.State = []string{"opted_out", "opted_in"}[r.IntN(2)]
		}
		evs[i] = ev{op: op, point: call + r.Int64N(ret-call+1), apply: true}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].point < evs[j].point })
	var cur RegState
	cur.Exact = true
	logIndex := uint64(1)
	var tags []history.Op
	for i := range evs {
		op := &evs[i].op
		logIndex += uint64(1 + r.IntN(2))
		switch op.Type {
		case history.Get, history.Check:
			if cur.Tag == "" {
				if op.Type == history.Get {
					op.Outcome = history.NotFound
				} else {
					op.Outcome = history.OK
				}
			} else {
				op.Outcome, op.State, op.Version = history.OK, cur.State, cur.Ver
				if op.Type == history.Get {
					op.Tag = cur.Tag
				}
			}
		case history.Write, history.CAS:
			if op.Type == history.CAS {
				exp := cur.Ver
				if r.IntN(3) == 0 {
					exp = uint64(r.IntN(int(logIndex) + 1))
				}
				op.Expected = u64(exp)
			}
			fate := r.IntN(6)
			if fate == 0 {
				op.Outcome = history.NotApplied
				continue
			}
			deny := op.Expected == nil && cur.Tag != "" && cur.State == "opted_out" && op.State == "opted_in"
			if op.Expected != nil && *op.Expected != cur.Ver || deny {
				op.Outcome, op.Version = history.Mismatch, cur.Ver
			} else {
				op.Outcome, op.Version = history.OK, logIndex
				cur = RegState{Tag: op.Tag, State: op.State, Ver: logIndex, Exact: true}
				tags = append(tags, *op)
			}
			if fate == 1 || fate == 2 {
				op.Outcome, op.Version = history.Unknown, 0
			}
		}
	}
	out := make([]history.Op, n)
	for _, e := range evs {
		out[e.op.Index] = e.op
	}
	if r.Float64() < corrupt && len(tags) > 0 {
		for i := range out {
			if out[i].Type == history.Get && r.IntN(2) == 0 {
				w := tags[r.IntN(len(tags))]
				out[i].Outcome, out[i].Tag, out[i].State, out[i].Version = history.OK, w.Tag, w.State, w.Version
				break
			}
		}
	}
	return out
}

// TestOptimisationsKeepVerdict: the optimised check and the plain one (every
// unknown write open forever) agree on random small histories, and both
// verdicts occur, so the comparison means something.
func TestOptimisationsKeepVerdict(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	full := Options{Timeout: time.Minute}
	var ok, illegal, second int
	for i := 0; i < 600; i++ {
		h := simulate(r, 4+r.IntN(7), 0.5)
		a := CheckKey("k", h, DefaultOptions())
		b := CheckKey("k", h, full)
		if a.Verdict != b.Verdict {
			t.Fatalf("history %d: optimised %s, full %s\n%s", i, a.Verdict, b.Verdict, dump(h))
		}
		switch a.Verdict {
		case Linearizable:
			ok++
		case NotLinearizable:
			illegal++
		}
		if a.Passes == 2 {
			second++
		}
	}
	t.Logf("linearizable %d, not %d, second pass %d", ok, illegal, second)
	if ok < 50 || illegal < 50 {
		t.Fatalf("too few of one verdict to compare: ok %d illegal %d", ok, illegal)
	}
}

// TestSimulatedCorrectHistoriesPass: uncorrupted histories of a correct
// register are always linearizable (the model accepts what the system does).
func TestSimulatedCorrectHistoriesPass(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for i := 0; i < 300; i++ {
		h := simulate(r, 4+r.IntN(10), 0)
		if res := CheckKey("k", h, DefaultOptions()); res.Verdict != Linearizable {
			t.Fatalf("history %d: %s\n%s", i, res.Verdict, dump(h))
		}
	}
}

func dump(h []history.Op) string {
	s := ""
	for _, op := range h {
		exp := ""
		if op.Expected != nil {
			exp = fmt.Sprintf(" exp=%d", *op.Expected)
		}
		s += fmt.Sprintf("#%d [%d,%d] %s %s %s%s → %s v%d\n", op.Index, op.Call, op.Return, op.Type, op.Tag, op.State, exp, op.Outcome, op.Version)
	}
	return s
}
