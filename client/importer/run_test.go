package importer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// fakeCluster is a Writer holding records in memory under Set's deny-wins
// rule, remembering batch keys, and failing on demand.
type fakeCluster struct {
	mu      sync.Mutex
	version uint64
	recs    map[optoutd.Key]*optoutv1.Record
	keys    map[string]*optoutv1.SetBatchResponse
	calls   []*optoutv1.SetBatchRequest
	// unknown makes the next n sends fail with an unknown outcome after
	// applying (the answer was lost); down, before applying.
	unknown, down int
}

func newFake() *fakeCluster {
	return &fakeCluster{recs: map[optoutd.Key]*optoutv1.Record{}, keys: map[string]*optoutv1.SetBatchResponse{}}
}

func (f *fakeCluster) SetBatch(_ context.Context, req *optoutv1.SetBatchRequest) (*optoutv1.SetBatchResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, req)
	if f.down > 0 {
		f.down--
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("connection reset"))
	}
	if prior, ok := f.keys[req.IdempotencyKey]; ok && req.IdempotencyKey != "" {
		return &optoutv1.SetBatchResponse{Version: prior.Version, Results: prior.Results, Replayed: true}, nil
	}
	res := &optoutv1.SetBatchResponse{Version: f.version + 1, DryRun: req.DryRun}
	staged := map[optoutd.Key]*optoutv1.Record{}
	for _, s := range req.Sets {
		k := optoutd.Key{SubjectID: s.SubjectId, Purpose: s.Purpose}
		cur := f.recs[k]
		if cur.GetState() == optoutv1.State_STATE_OPTED_OUT && s.State == optoutv1.State_STATE_OPTED_IN && s.ExpectedVersion == nil {
			res.Results = append(res.Results, &optoutv1.SetBatchResult{ErrorCode: connect.CodeFailedPrecondition.String(), ErrorMessage: "re-consent needs expectedVersion", CurrentVersion: cur.GetVersion()})
			continue
		}
		rec := &optoutv1.Record{SubjectId: s.SubjectId, Purpose: s.Purpose, State: s.State, Version: res.Version, Source: s.Source}
		staged[k] = rec
		res.Results = append(res.Results, &optoutv1.SetBatchResult{Record: rec, PreviousState: cur.GetState(), PreviousVersion: cur.GetVersion()})
	}
	if req.DryRun {
		res.Version = f.version
		return res, nil
	}
	f.version++
	for k, r := range staged {
		f.recs[k] = r
	}
	if req.IdempotencyKey != "" {
		f.keys[req.IdempotencyKey] = res
	}
	if f.unknown > 0 {
		f.unknown--
		ce := connect.NewError(connect.CodeUnavailable, errors.New("unexpected EOF"))
		return nil, ce
	}
	return res, nil
}

func csvRows(lines ...string) string {
	return "subject_id,purpose,state\n" + strings.Join(lines, "\n") + "\n"
}

func runOn(t *testing.T, f *fakeCluster, in string, cfg Config) (Summary, []Problem, error) {
	t.Helper()
	var probs []Problem
	if cfg.ImportID == "" {
		cfg.ImportID = "test"
	}
	cfg.OnProblem = func(p Problem) { probs = append(probs, p) }
	sum, err := Run(context.Background(), NewReader(strings.NewReader(in), CSV, Defaults{Source: "t", Now: now}), f, cfg)
	return sum, probs, err
}

// TestRunWritesInBatchesAndReportsEachLine: good lines are written in
// batches of BatchSize, a bad line and a refused write are reported with
// their line numbers, and the others are written.
func TestRunWritesInBatchesAndReportsEachLine(t *testing.T) {
	f := newFake()
	f.recs[optoutd.Key{SubjectID: "u0", Purpose: "analytics"}] = &optoutv1.Record{State: optoutv1.State_STATE_OPTED_OUT, Version: 0x7}
	f.version = 7
	var lines []string
	for i := 1; i <= 25; i++ {
		lines = append(lines, fmt.Sprintf("u%d,analytics,out", i))
	}
	lines = append(lines, "u0,analytics,in", "u99,analytics,sideways")
	sum, probs, err := runOn(t, f, csvRows(lines...), Config{BatchSize: 10, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Lines != 27 || sum.Written != 25 || sum.New != 25 || sum.Refused != 1 || sum.BadLines != 1 || sum.Batches != 3 {
		t.Fatalf("summary %+v", sum)
	}
	if len(probs) != 2 {
		t.Fatalf("problems %+v", probs)
	}
	byLine := map[int]Problem{}
	for _, p := range probs {
		byLine[p.Line] = p
	}
	if p := byLine[27]; p.Code != "failed_precondition" || p.SubjectID != "u0" || p.CurrentVersion != 7 {
		t.Errorf("line 27: %+v", p)
	}
	if p := byLine[28]; p.Code != "bad_line" || !strings.Contains(p.Message, "sideways") {
		t.Errorf("line 28: %+v", p)
	}
	if !sum.Problems() {
		t.Error("Problems() is false")
	}
}

// TestRunKeepsFileOrderPerRecord: a record written twice in a file is
// written twice, in file order (never in one batch), whatever the lanes.
func TestRunKeepsFileOrderPerRecord(t *testing.T) {
	f := newFake()
	in := csvRows("u1,analytics,in", "u2,analytics,in", "u1,analytics,out", "u1,analytics,in")
	sum, probs, err := runOn(t, f, in, Config{BatchSize: 100, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	// The last opt-in lacks the version: deny wins, as it would for Sets
	// in this order.
	if sum.Written != 3 || sum.Refused != 1 || len(probs) != 1 || probs[0].Line != 5 {
		t.Fatalf("summary %+v, problems %+v", sum, probs)
	}
	if got := f.recs[optoutd.Key{SubjectID: "u1", Purpose: "analytics"}].GetState(); got != optoutv1.State_STATE_OPTED_OUT {
		t.Errorf("u1 ends %v, want opted out", got)
	}
	if sum.Changed != 1 {
		t.Errorf("changed %d, want 1 (u1 in, then out)", sum.Changed)
	}
}

// TestRunResumesWithTheSameKeys: an import run again under the same ID
// sends the same batches with the same keys, so what was applied is
// replayed; a lost answer is sent again under its key and not written
// twice.
func TestRunResumesWithTheSameKeys(t *testing.T) {
	f := newFake()
	var lines []string
	for i := range 30 {
		lines = append(lines, fmt.Sprintf("u%d,analytics,out", i))
	}
	in := csvRows(lines...)
	f.unknown = 1
	first, _, err := runOn(t, f, in, Config{BatchSize: 7, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if first.Written != 30 || f.version != uint64(first.Batches) {
		t.Fatalf("first run: %+v, %d versions", first, f.version)
	}
	again, _, err := runOn(t, f, in, Config{BatchSize: 7, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if again.Replayed != 30 || again.New != 0 || f.version != uint64(first.Batches) {
		t.Fatalf("second run: %+v; the cluster is at version %d after %d batches", again, f.version, first.Batches)
	}
	other, _, err := runOn(t, f, in, Config{BatchSize: 7, Concurrency: 3, ImportID: "another"})
	if err != nil {
		t.Fatal(err)
	}
	if other.Replayed != 0 || other.Unchanged != 30 {
		t.Fatalf("another import ID: %+v", other)
	}
}

// TestRunGivesUpOnAnUnknownOutcomeAndSaysHowToResume: a batch whose
// outcome stays unknown stops the import with an error that says to run
// it again.
func TestRunGivesUpOnAnUnknownOutcomeAndSaysHowToResume(t *testing.T) {
	f := newFake()
	f.down = 100
	_, _, err := runOn(t, f, csvRows("u1,analytics,out"), Config{Attempts: 3})
	if err == nil || !strings.Contains(err.Error(), "outcome unknown after 3 attempts") || !strings.Contains(err.Error(), "run the same import again") {
		t.Fatalf("err = %v", err)
	}
	if len(f.calls) != 3 {
		t.Errorf("%d sends, want 3", len(f.calls))
	}
	for _, c := range f.calls[1:] {
		if c.IdempotencyKey != f.calls[0].IdempotencyKey || c.IdempotencyKey == "" {
			t.Errorf("a resend changed the key: %q then %q", f.calls[0].IdempotencyKey, c.IdempotencyKey)
		}
	}
}

// TestDryRunWritesNothing: a dry run sends dry-run batches without keys
// and counts what would happen.
func TestDryRunWritesNothing(t *testing.T) {
	f := newFake()
	sum, _, err := runOn(t, f, csvRows("u1,analytics,out", "u2,analytics,in"), Config{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.recs) != 0 || f.version != 0 || !sum.DryRun || sum.New != 2 {
		t.Fatalf("dry run: %+v, %d records", sum, len(f.recs))
	}
	for _, c := range f.calls {
		if !c.DryRun || c.IdempotencyKey != "" {
			t.Errorf("dry run sent %v", c)
		}
	}
}

// TestStrictStopsAtTheFirstRefusal.
func TestStrictStopsAtTheFirstRefusal(t *testing.T) {
	f := newFake()
	f.recs[optoutd.Key{SubjectID: "u0", Purpose: "analytics"}] = &optoutv1.Record{State: optoutv1.State_STATE_OPTED_OUT, Version: 1}
	var lines []string
	lines = append(lines, "u0,analytics,in")
	for i := 1; i <= 50; i++ {
		lines = append(lines, fmt.Sprintf("u%d,analytics,out", i))
	}
	sum, _, err := runOn(t, f, csvRows(lines...), Config{BatchSize: 1, Concurrency: 1, Strict: true})
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("err = %v", err)
	}
	if sum.Refused != 1 || sum.Written > 1 {
		t.Fatalf("strict run went on: %+v", sum)
	}
}

func TestConfigLimits(t *testing.T) {
	for _, cfg := range []Config{{BatchSize: 1001}, {BatchSize: -1}, {Concurrency: 65}, {Concurrency: -2}} {
		cfg.ImportID = "x"
		if _, err := Run(context.Background(), NewReader(strings.NewReader(""), CSV, Defaults{}), newFake(), cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := Run(context.Background(), NewReader(strings.NewReader(""), CSV, Defaults{}), newFake(), Config{}); err == nil {
		t.Error("no ImportID accepted")
	}
}
