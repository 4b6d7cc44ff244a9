package fsm

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// batchFSM is an initialised FSM and the next index to apply at.
type batchFSM struct {
	t     *testing.T
	f     *FSM
	index uint64
}

func newBatchFSM(t *testing.T) *batchFSM {
	f := openTemp(t)
	initFSM(t, f)
	return &batchFSM{t: t, f: f, index: 1}
}

func (b *batchFSM) apply(m proto.Message) *fsmv1.Result {
	b.t.Helper()
	data, err := command.Encode(m, time.Unix(1000, 0))
	if err != nil {
		b.t.Fatal(err)
	}
	b.index++
	res, ok := b.f.Apply(&raft.Log{Index: b.index, Term: 1, Type: raft.LogCommand, Data: data}).(*fsmv1.Result)
	if !ok || b.f.Halted() != nil {
		b.t.Fatalf("index %d: no result (halted: %v)", b.index, b.f.Halted())
	}
	return res
}

func out(subject, purpose string) *fsmv1.SetCommand {
	return &fsmv1.SetCommand{SubjectId: subject, Purpose: purpose, State: fsmv1.State_STATE_OPTED_OUT, Source: "import"}
}

func in(subject, purpose string) *fsmv1.SetCommand {
	return &fsmv1.SetCommand{SubjectId: subject, Purpose: purpose, State: fsmv1.State_STATE_OPTED_IN, Source: "import"}
}

func (b *batchFSM) view(fn func(r *Reader) error) {
	b.t.Helper()
	if err := b.f.View(fn); err != nil {
		b.t.Fatal(err)
	}
}

// TestSetBatchAppliesEachWriteUnderSetsRules: the writes apply in order at
// one index; a write a rule refuses (deny wins, a stale expected version,
// an undefined purpose) is refused alone, with Set's error, and changes
// nothing; the written records get audit entries seq 0, 1, 2 in order.
func TestSetBatchAppliesEachWriteUnderSetsRules(t *testing.T) {
	b := newBatchFSM(t)
	if r := b.apply(out("u1", "analytics")); r.ErrorCode != 0 {
		t.Fatal(r.ErrorMessage)
	}
	stale := uint64(1)
	cas := in("u2", "analytics")
	cas.ExpectedVersion = &stale
	res := b.apply(&fsmv1.SetBatchCommand{Caller: "importer", Sets: []*fsmv1.SetCommand{
		out("u2", "email_marketing"),
		in("u1", "analytics"), // deny wins: an opt-in without the version
		cas,                   // expected 1, the record does not exist
		out("u2", "no_such_purpose"),
		in("u3", "analytics"),
		out("u2", optoutd.AllPurposes),
	}})
	if res.ErrorCode != 0 || len(res.Items) != 6 {
		t.Fatalf("batch: %v %q, %d items", res.ErrorCode, res.ErrorMessage, len(res.Items))
	}
	want := []fsmv1.ErrorCode{0, fsmv1.ErrorCode_ERROR_CODE_VERSION_MISMATCH, fsmv1.ErrorCode_ERROR_CODE_VERSION_MISMATCH, fsmv1.ErrorCode_ERROR_CODE_NOT_FOUND, 0, 0}
	for i, it := range res.Items {
		if it.ErrorCode != want[i] {
			t.Errorf("item %d: %v %q, want %v", i, it.ErrorCode, it.ErrorMessage, want[i])
		}
		if it.ErrorCode == 0 && it.GetRecord().GetVersion() != b.index {
			t.Errorf("item %d: version %d, want the batch's index %d", i, it.GetRecord().GetVersion(), b.index)
		}
	}
	if !strings.Contains(res.Items[1].ErrorMessage, "re-consent needs expectedVersion") || res.Items[1].CurrentVersion != 2 {
		t.Errorf("deny wins: %q current %d", res.Items[1].ErrorMessage, res.Items[1].CurrentVersion)
	}
	b.view(func(r *Reader) error {
		rec, ok, err := r.Get(optoutd.Key{SubjectID: "u1", Purpose: "analytics"})
		if err != nil || !ok || rec.State != optoutd.StateOptedOut || rec.Version != 2 {
			t.Errorf("u1/analytics after a refused opt-in: %+v %v %v", rec, ok, err)
		}
		if _, ok, _ := r.Get(optoutd.Key{SubjectID: "u2", Purpose: "analytics"}); ok {
			t.Error("the refused compare-and-set wrote a record")
		}
		changes, err := r.Changes(2, 100)
		if err != nil {
			return err
		}
		var got []string
		for _, c := range changes {
			got = append(got, c.SubjectID+"/"+c.Purpose+"@"+string(rune('0'+c.Seq)))
			if c.Version != b.index || c.Caller != "importer" {
				t.Errorf("change %+v: want version %d, caller importer", c, b.index)
			}
		}
		if strings.Join(got, " ") != "u2/email_marketing@0 u3/analytics@1 u2/all@2" {
			t.Errorf("changes: %v", got)
		}
		rep, err := r.VerifyAudit()
		if err != nil || !rep.OK() || rep.Entries != 4 {
			t.Errorf("audit chain: %+v %v", rep, err)
		}
		return nil
	})
}

// TestSetBatchStructuralProblemsRefuseTheWholeBatch: a bad write, a write
// with its own idempotency key, or the same record twice refuses the batch
// as invalid, and nothing is written.
func TestSetBatchStructuralProblemsRefuseTheWholeBatch(t *testing.T) {
	keyed := out("u2", "analytics")
	keyed.IdempotencyKey, keyed.IdempotencyTtlNanos = "k", int64(time.Hour)
	for name, c := range map[string]*fsmv1.SetBatchCommand{
		"empty":           {},
		"bad state":       {Sets: []*fsmv1.SetCommand{out("u1", "analytics"), {SubjectId: "u2", Purpose: "analytics"}}},
		"own key":         {Sets: []*fsmv1.SetCommand{out("u1", "analytics"), keyed}},
		"same record":     {Sets: []*fsmv1.SetCommand{out("u1", "analytics"), out("u2", "analytics"), in("u1", "analytics")}},
		"key without ttl": {IdempotencyKey: "b1", Sets: []*fsmv1.SetCommand{out("u1", "analytics")}},
	} {
		t.Run(name, func(t *testing.T) {
			b := newBatchFSM(t)
			res := b.apply(c)
			if res.ErrorCode != fsmv1.ErrorCode_ERROR_CODE_INVALID || len(res.Items) != 0 {
				t.Fatalf("got %v %q with %d items, want invalid", res.ErrorCode, res.ErrorMessage, len(res.Items))
			}
			b.view(func(r *Reader) error {
				if ch, _ := r.Changes(0, 10); len(ch) != 0 {
					t.Errorf("a refused batch wrote %d changes", len(ch))
				}
				return nil
			})
		})
	}
}

// TestSetBatchIsIdempotentPerBatchKey: the same batch under the same key
// replays the first result and writes nothing; another batch under it is
// refused; the key is not confused with a single Set's.
func TestSetBatchIsIdempotentPerBatchKey(t *testing.T) {
	b := newBatchFSM(t)
	batch := func(sets ...*fsmv1.SetCommand) *fsmv1.SetBatchCommand {
		return &fsmv1.SetBatchCommand{IdempotencyKey: "import-7", IdempotencyTtlNanos: int64(time.Hour), Sets: sets}
	}
	first := b.apply(batch(out("u1", "analytics"), out("u2", "analytics")))
	again := b.apply(batch(out("u1", "analytics"), out("u2", "analytics")))
	if !again.Replayed || again.Index != first.Index || len(again.Items) != 2 || again.Items[1].GetRecord().GetVersion() != first.Index {
		t.Fatalf("replay: %+v, first at %d", again, first.Index)
	}
	other := b.apply(batch(out("u1", "analytics"), out("u3", "analytics")))
	if other.ErrorCode != fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION || !strings.Contains(other.ErrorMessage, "different request") {
		t.Fatalf("another batch under the key: %v %q", other.ErrorCode, other.ErrorMessage)
	}
	single := out("u1", "analytics")
	single.IdempotencyKey, single.IdempotencyTtlNanos = "import-7", int64(time.Hour)
	if r := b.apply(single); r.ErrorCode != fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION {
		t.Fatalf("a single Set under the batch's key: %v %q", r.ErrorCode, r.ErrorMessage)
	}
	b.view(func(r *Reader) error {
		if ch, _ := r.Changes(0, 100); len(ch) != 2 {
			t.Errorf("%d changes, want the first batch's 2", len(ch))
		}
		return nil
	})
}

// TestPagesNeverSplitAVersion: History and Changes pages end only between
// versions, so a cursor of versions pages through a batch without skipping.
func TestPagesNeverSplitAVersion(t *testing.T) {
	b := newBatchFSM(t)
	b.apply(out("u1", "email_marketing"))
	at := b.apply(&fsmv1.SetBatchCommand{Sets: []*fsmv1.SetCommand{out("u1", "analytics"), out("u1", "profiling"), out("u2", "analytics")}}).Index
	b.apply(in("u1", "sms_marketing"))
	b.view(func(r *Reader) error {
		h, err := r.History("u1", "", 0, 2)
		if err != nil {
			return err
		}
		if len(h) != 3 || h[0].Version != at+1 || h[1].Version != at || h[2].Version != at {
			t.Errorf("first page: %v", versions(h))
		}
		h, err = r.History("u1", "", at, 2)
		if err != nil || len(h) != 1 || h[0].Version != at-1 {
			t.Errorf("second page: %v %v", versions(h), err)
		}
		c, err := r.Changes(at-1, 1)
		if err != nil || len(c) != 3 {
			t.Errorf("changes page from %d: %v %v", at-1, versions(c), err)
		}
		st, err := r.StateAt(optoutd.Key{SubjectID: "u1", Purpose: "profiling"}, at)
		if err != nil || st.Record.State != optoutd.StateOptedOut {
			t.Errorf("StateAt the batch: %+v %v", st, err)
		}
		return nil
	})
}

// TestEraseScrubsBatchEntries: erasing a subject blanks its entries at
// every seq, and the chain still verifies.
func TestEraseScrubsBatchEntries(t *testing.T) {
	b := newBatchFSM(t)
	b.apply(&fsmv1.SetBatchCommand{Sets: []*fsmv1.SetCommand{out("u2", "analytics"), out("u1", "analytics"), in("u1", "profiling")}})
	if r := b.apply(&fsmv1.EraseSubjectCommand{SubjectId: "u1", Reason: "gdpr"}); r.ErrorCode != 0 {
		t.Fatal(r.ErrorMessage)
	}
	b.view(func(r *Reader) error {
		c, err := r.Changes(0, 100)
		if err != nil {
			return err
		}
		for _, e := range c {
			if e.Seq > 0 && e.Purpose != "analytics" || e.Seq == 2 {
				if !e.Erased || e.SubjectID != "" || e.Source != "" {
					t.Errorf("entry %d seq %d not scrubbed: %+v", e.Version, e.Seq, e)
				}
			}
			if e.Seq == 0 && e.Kind == optoutd.AuditSet && (e.Erased || e.SubjectID != "u2") {
				t.Errorf("u2's entry was touched: %+v", e)
			}
		}
		rep, err := r.VerifyAudit()
		if err != nil || !rep.OK() {
			t.Errorf("audit chain after erase: %+v %v", rep, err)
		}
		return nil
	})
}

// TestCompactionRemovesWholeVersions: retention removes a batch's entries
// together even past the per-entry budget.
func TestCompactionRemovesWholeVersions(t *testing.T) {
	b := newBatchFSM(t)
	sets := make([]*fsmv1.SetCommand, housekeepingBudget+10)
	for i := range sets {
		sets[i] = out("s"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), "analytics")
	}
	at := b.apply(&fsmv1.SetBatchCommand{Sets: sets}).Index
	ret := int64(time.Second)
	b.apply(&fsmv1.UpdateSettingsCommand{AuditRetentionNanos: &ret})
	// The next entry, stamped later, runs housekeeping with the window
	// passed; TermStart writes no audit entry of its own.
	data, err := command.Encode(&fsmv1.TermStartCommand{LeaderId: "n1"}, time.Unix(2000, 0))
	if err != nil {
		t.Fatal(err)
	}
	b.index++
	b.f.Apply(&raft.Log{Index: b.index, Term: 1, Type: raft.LogCommand, Data: data})
	b.view(func(r *Reader) error {
		c, err := r.Changes(0, 1000)
		if err != nil {
			return err
		}
		for _, e := range c {
			if e.Version == at {
				t.Fatalf("compaction left part of version %d (seq %d); %d entries remain", at, e.Seq, len(c))
			}
		}
		rep, err := r.VerifyAudit()
		if err != nil || !rep.OK() {
			t.Errorf("audit chain after compaction: %+v %v", rep, err)
		}
		return nil
	})
}

func versions(es []optoutd.AuditEntry) []uint64 {
	var v []uint64
	for _, e := range es {
		v = append(v, e.Version)
	}
	return v
}

// TestLargeApplyBatchIsSplitIntoTransactions: a follower handed many large
// entries at once applies them in several bbolt transactions of at most
// maxTxBytes, since one huge transaction grows its nodes without splitting
// them (quadratic: a fresh node catching up on a 1M-record import stalled
// for minutes; BenchmarkCatchUp500x64 measures it). Every entry still gets
// its result, and the applied index is the last one.
func TestLargeApplyBatchIsSplitIntoTransactions(t *testing.T) {
	f := openTemp(t)
	initFSM(t, f)
	var logs []*raft.Log
	total := 0
	for i := range 12 {
		c := &fsmv1.SetBatchCommand{}
		for j := range 1000 {
			c.Sets = append(c.Sets, out(fmt.Sprintf("subject-%d-%d-%s", i, j, strings.Repeat("x", 200)), "analytics"))
		}
		data, err := command.Encode(c, time.Unix(1000, 0))
		if err != nil {
			t.Fatal(err)
		}
		total += len(data)
		logs = append(logs, &raft.Log{Index: uint64(i) + 2, Term: 1, Type: raft.LogCommand, Data: data})
	}
	before := f.Commits()
	for i, r := range f.ApplyBatch(logs) {
		if res, ok := r.(*fsmv1.Result); !ok || res.ErrorCode != 0 || len(res.Items) != 1000 {
			t.Fatalf("entry %d: %v", i, r)
		}
	}
	if got, want := f.Commits()-before, uint64(total/maxTxBytes); got < want || got < 2 {
		t.Errorf("%d bytes of entries in %d transactions, want at least %d", total, got, max(want, 2))
	}
	if f.AppliedIndex() != 13 {
		t.Errorf("applied index %d, want 13", f.AppliedIndex())
	}
}
