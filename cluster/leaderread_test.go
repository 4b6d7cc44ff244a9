package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// fakeRaft scripts what the leader's read-index round sees of Raft.
type fakeRaft struct {
	term    atomic.Uint64
	commit  atomic.Uint64
	verify  func() error // what VerifyLeader answers, run when it is called
	voters  []raft.ServerID
	verifys atomic.Int64
}

func (f *fakeRaft) CurrentTerm() uint64 { return f.term.Load() }
func (f *fakeRaft) CommitIndex() uint64 { return f.commit.Load() }
func (f *fakeRaft) VerifyLeader() raft.Future {
	f.verifys.Add(1)
	return doneFuture{f.verify()}
}

func (f *fakeRaft) GetConfiguration() raft.ConfigurationFuture {
	var cf raft.Configuration
	for _, id := range f.voters {
		cf.Servers = append(cf.Servers, raft.Server{ID: id, Suffrage: raft.Voter})
	}
	return configFuture{cf}
}

type doneFuture struct{ err error }

func (d doneFuture) Error() error { return d.err }

type configFuture struct{ cf raft.Configuration }

func (c configFuture) Error() error                      { return nil }
func (c configFuture) Index() uint64                     { return 0 }
func (c configFuture) Configuration() raft.Configuration { return c.cf }

func newFake() *fakeRaft {
	f := &fakeRaft{voters: []raft.ServerID{"n1", "n2", "n3"}}
	f.term.Store(5)
	f.commit.Store(100)
	return f
}

func roundCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestLeaderRoundSafeguards: each safeguard of the leader's read-index
// round, and what the round does without the condition it guards. Each
// case fails if its safeguard is taken out of readIndexAsLeader or
// confirmLeadership.
func TestLeaderRoundSafeguards(t *testing.T) {
	t.Run("not ready: no entry of this term applied yet", func(t *testing.T) {
		f := newFake()
		f.verify = func() error { return nil }
		_, err := readIndexAsLeader(roundCtx(t, time.Second), f, 4, newAckTracker(), "n1")
		if !errors.Is(err, errNotReady) {
			t.Fatalf("got %v, want errNotReady", err)
		}
		if f.verifys.Load() != 0 {
			t.Fatal("a round that is not ready still asked for a quorum")
		}
	})
	t.Run("a quorum refuses", func(t *testing.T) {
		f := newFake()
		f.verify = func() error { return raft.ErrNotLeader }
		if _, err := readIndexAsLeader(roundCtx(t, time.Second), f, 5, newAckTracker(), "n1"); !errors.Is(err, raft.ErrNotLeader) {
			t.Fatalf("got %v, want the VerifyLeader failure", err)
		}
	})
	t.Run("the term changes while confirming", func(t *testing.T) {
		f := newFake()
		acks := newAckTracker()
		f.verify = func() error {
			acks.record("n2", 5, time.Now())
			f.term.Store(6)
			return nil
		}
		if _, err := readIndexAsLeader(roundCtx(t, time.Second), f, 5, acks, "n1"); !errors.Is(err, errTermChanged) {
			t.Fatalf("got %v, want errTermChanged", err)
		}
	})
	t.Run("the commit index is the one from before the quorum round", func(t *testing.T) {
		f := newFake()
		acks := newAckTracker()
		f.verify = func() error {
			acks.record("n2", 5, time.Now())
			f.commit.Store(150)
			return nil
		}
		idx, err := readIndexAsLeader(roundCtx(t, time.Second), f, 5, acks, "n1")
		if err != nil || idx != 100 {
			t.Fatalf("got %d, %v; want 100 (captured before VerifyLeader)", idx, err)
		}
	})
	t.Run("VerifyLeader counted an answer to a request sent before the round", func(t *testing.T) {
		// hashicorp/raft's VerifyLeader succeeds on a response that was in
		// flight when it was called. Only that answer exists here: the
		// round must not return.
		f := newFake()
		acks := newAckTracker()
		acks.record("n2", 5, time.Now().Add(-time.Second))
		acks.record("n3", 5, time.Now().Add(-time.Second))
		f.verify = func() error { return nil }
		if idx, err := readIndexAsLeader(roundCtx(t, 300*time.Millisecond), f, 5, acks, "n1"); err == nil {
			t.Fatalf("the round returned read index %d on answers to requests sent before it began", idx)
		}
		// A heartbeat sent during the round, answered in term 5: now it
		// returns.
		f.verify = func() error {
			go acks.record("n3", 5, time.Now())
			return nil
		}
		if idx, err := readIndexAsLeader(roundCtx(t, 10*time.Second), f, 5, acks, "n1"); err != nil || idx != 100 {
			t.Fatalf("with a fresh answer: %d, %v", idx, err)
		}
	})
	t.Run("an answer in another term does not count", func(t *testing.T) {
		f := newFake()
		acks := newAckTracker()
		f.verify = func() error {
			acks.record("n2", 4, time.Now())
			acks.record("n3", 6, time.Now())
			return nil
		}
		if idx, err := readIndexAsLeader(roundCtx(t, 300*time.Millisecond), f, 5, acks, "n1"); err == nil {
			t.Fatalf("the round returned read index %d on answers from other terms", idx)
		}
	})
	t.Run("a single voter needs no answer", func(t *testing.T) {
		f := newFake()
		f.voters = []raft.ServerID{"n1"}
		f.verify = func() error { return nil }
		if idx, err := readIndexAsLeader(roundCtx(t, time.Second), f, 5, newAckTracker(), "n1"); err != nil || idx != 100 {
			t.Fatalf("got %d, %v", idx, err)
		}
	})
}

// TestAckTrackerKeepsTheNewestSend: the tracker keeps the
// newest send time per peer, in the term the request carried, and ignores
// an older send that completes later.
func TestAckTrackerKeepsTheNewestSend(t *testing.T) {
	a := newAckTracker()
	t0 := time.Now()
	a.record("n2", 5, t0.Add(2*time.Second))
	a.record("n2", 5, t0.Add(time.Second)) // an older request answered late
	if ok, _ := a.freshQuorum("n1", []raft.ServerID{"n1", "n2", "n3"}, 5, t0.Add(1500*time.Millisecond)); !ok {
		t.Fatal("the newer send was forgotten")
	}
	a.record("n2", 6, t0) // a new term replaces the old one's answers
	if ok, _ := a.freshQuorum("n1", []raft.ServerID{"n1", "n2", "n3"}, 5, t0.Add(1500*time.Millisecond)); ok {
		t.Fatal("an answer from term 6 counted for term 5")
	}
}
