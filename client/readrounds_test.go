package client

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedRounds is a readRounds whose rounds each block until the test
// says what they answer.
type scriptedRounds struct {
	*readRounds
	started chan int64       // the number of each round, as it starts
	answer  chan roundResult // what the round in flight answers
	calls   atomic.Int64
	cancel  context.CancelFunc
}

func newScriptedRounds(t *testing.T) *scriptedRounds {
	base, cancel := context.WithCancel(context.Background())
	s := &scriptedRounds{started: make(chan int64, 16), answer: make(chan roundResult), cancel: cancel}
	s.readRounds = newReadRounds(base, time.Minute, func(ctx context.Context) (roundResult, error) {
		s.started <- s.calls.Add(1)
		select {
		case r := <-s.answer:
			if r.index == 0 {
				return r, errors.New("no leader")
			}
			return r, nil
		case <-ctx.Done():
			return roundResult{}, ctx.Err()
		}
	})
	t.Cleanup(func() { cancel(); s.close() })
	return s
}

type joinResult struct {
	res roundResult
	err error
}

func (s *scriptedRounds) lookup(ctx context.Context) <-chan joinResult {
	out := make(chan joinResult, 1)
	go func() {
		res, err := s.join(ctx)
		out <- joinResult{res, err}
	}()
	return out
}

// waitFor polls until n lookups wait for the next round.
func (s *scriptedRounds) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d lookups wait for the next round, want %d", s.waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func recv(t *testing.T, c <-chan joinResult) joinResult {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("lookup never answered")
		return joinResult{}
	}
}

func (s *scriptedRounds) nextStarted(t *testing.T) int64 {
	t.Helper()
	select {
	case n := <-s.started:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no round started")
		return 0
	}
}

// TestALookupDuringARoundJoinsTheNextOne: a lookup with no round in flight
// starts one; lookups that arrive while it is in flight do not take its
// answer (its index may predate a write they must see) but share the next
// round, which starts when the first ends; a failed round fails every
// lookup that shared it.
func TestALookupDuringARoundJoinsTheNextOne(t *testing.T) {
	s := newScriptedRounds(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	a := s.lookup(ctx)
	if n := s.nextStarted(t); n != 1 {
		t.Fatalf("first round is number %d", n)
	}
	// b and c arrive while round 1 is in flight.
	b, c := s.lookup(ctx), s.lookup(ctx)
	s.waitFor(t, 2)
	s.answer <- roundResult{index: 10, catalog: 3}
	if r := recv(t, a); r.err != nil || r.res.index != 10 || r.res.catalog != 3 {
		t.Fatalf("the lookup that started round 1 got %+v", r)
	}
	if n := s.nextStarted(t); n != 2 {
		t.Fatalf("the round after the first is number %d", n)
	}
	select {
	case r := <-b:
		t.Fatalf("a lookup that arrived during round 1 took an answer before round 2 answered: %+v", r)
	case r := <-c:
		t.Fatalf("a lookup that arrived during round 1 took an answer before round 2 answered: %+v", r)
	default:
	}
	// d arrives during round 2: it waits for round 3.
	d := s.lookup(ctx)
	s.waitFor(t, 1)
	s.answer <- roundResult{index: 12, catalog: 3}
	for _, ch := range []<-chan joinResult{b, c} {
		if r := recv(t, ch); r.err != nil || r.res.index != 12 {
			t.Fatalf("a lookup that arrived during round 1 got %+v, want round 2's index 12", r)
		}
	}
	if n := s.nextStarted(t); n != 3 {
		t.Fatalf("round number %d, want 3", n)
	}
	s.answer <- roundResult{} // fails
	if r := recv(t, d); r.err == nil {
		t.Fatalf("a lookup of a failed round got %+v", r)
	}
	if got := s.count.Load(); got != 3 || s.calls.Load() != 3 {
		t.Fatalf("%d rounds counted, %d made; want 3 for 4 lookups", got, s.calls.Load())
	}
}

// TestALookupThatGivesUpLeavesTheRoundToOthers: a lookup whose context
// ends returns at once; the round it was to share still answers the
// others.
func TestALookupThatGivesUpLeavesTheRoundToOthers(t *testing.T) {
	s := newScriptedRounds(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x := s.lookup(ctx)
	s.nextStarted(t)
	gone, giveUp := context.WithCancel(ctx)
	a, b := s.lookup(gone), s.lookup(ctx)
	s.waitFor(t, 2)
	giveUp()
	if r := recv(t, a); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("a lookup whose context ended got %+v", r)
	}
	s.answer <- roundResult{index: 7}
	recv(t, x)
	s.nextStarted(t)
	s.answer <- roundResult{index: 9}
	if r := recv(t, b); r.err != nil || r.res.index != 9 {
		t.Fatalf("the other lookup got %+v, want round 2's index 9", r)
	}
}
