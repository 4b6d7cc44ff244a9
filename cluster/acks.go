package cluster

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Fresh acknowledgements.
//
// hashicorp/raft's VerifyLeader is answered by whichever AppendEntries
// responses arrive after it is registered (followerReplication.notifyAll),
// including responses to requests that were sent before it: a heartbeat or
// an append already in flight. Such a response shows that the follower
// accepted this leader at some moment before the read began, which proves
// nothing about the moment of the read: under a long one-way delay a
// follower can answer, then vote for a new leader, which then commits and
// acknowledges a write, all before the stale answer reaches the old leader.
// The leader lease does not help, since the late answer also renews it.
//
// So the transport is wrapped: for every peer it remembers the send time of
// the newest request whose response came back in the term it was sent in
// (a follower answers with our term only while it recognises us as the
// leader of that term). A read round counts a follower only if such a
// request was sent at or after the round began; see leaderReadIndex and
// DESIGN.md, "Why VerifyLeader alone is not enough".
type ackTracker struct {
	mu      sync.Mutex
	acks    map[raft.ServerID]ack
	changed chan struct{} // closed and replaced on every new ack
}

type ack struct {
	term uint64
	sent time.Time
}

func newAckTracker() *ackTracker {
	return &ackTracker{acks: map[raft.ServerID]ack{}, changed: make(chan struct{})}
}

// record notes that id answered, in term, a request sent at sent.
func (a *ackTracker) record(id raft.ServerID, term uint64, sent time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur, ok := a.acks[id]; ok && cur.term == term && !sent.After(cur.sent) {
		return
	}
	a.acks[id] = ack{term: term, sent: sent}
	close(a.changed)
	a.changed = make(chan struct{})
}

// freshQuorum reports whether self and enough of voters answered, in term,
// requests sent at or after since to make a majority of voters; when not,
// it also returns a channel that is closed on the next ack.
func (a *ackTracker) freshQuorum(self raft.ServerID, voters []raft.ServerID, term uint64, since time.Time) (bool, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, id := range voters {
		if id == self {
			n++
			continue
		}
		if ack, ok := a.acks[id]; ok && ack.term == term && !ack.sent.Before(since) {
			n++
		}
	}
	return n >= len(voters)/2+1, a.changed
}

// ackTransport is hashicorp/raft's transport, reporting acknowledgements to
// an ackTracker. It passes everything else through, and keeps the optional
// interfaces (WithClose, WithPreVote) that hashicorp/raft looks for.
type ackTransport struct {
	*raft.NetworkTransport
	acks *ackTracker
}

var (
	_ raft.Transport   = (*ackTransport)(nil)
	_ raft.WithClose   = (*ackTransport)(nil)
	_ raft.WithPreVote = (*ackTransport)(nil)
)

func (t *ackTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	sent := time.Now()
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err == nil && resp.Term == args.Term {
		t.acks.record(id, args.Term, sent)
	}
	return err
}

func (t *ackTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	ap := &ackPipeline{AppendPipeline: p, id: id, acks: t.acks, out: make(chan raft.AppendFuture, 128), done: make(chan struct{})}
	go ap.relay()
	return ap, nil
}

// ackPipeline relays the pipeline's completed appends to hashicorp/raft,
// noting each acknowledgement on the way. Each future carries the time its
// request was sent (AppendFuture.Start).
type ackPipeline struct {
	raft.AppendPipeline
	id   raft.ServerID
	acks *ackTracker
	out  chan raft.AppendFuture
	done chan struct{}
	once sync.Once
}

func (p *ackPipeline) relay() {
	in := p.AppendPipeline.Consumer()
	for {
		select {
		case f := <-in:
			if f.Error() == nil && f.Response().Term == f.Request().Term {
				p.acks.record(p.id, f.Request().Term, f.Start())
			}
			select {
			case p.out <- f:
			case <-p.done:
				return
			}
		case <-p.done:
			return
		}
	}
}

func (p *ackPipeline) Consumer() <-chan raft.AppendFuture { return p.out }

func (p *ackPipeline) Close() error {
	p.once.Do(func() { close(p.done) })
	return p.AppendPipeline.Close()
}
