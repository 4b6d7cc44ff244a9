package clustertest

import (
	"sync"

	"github.com/hashicorp/raft"
)

// LogGate holds back one node's Raft log appends: while held, an append
// that carries an entry of the held term or later blocks until Release.
// Everything else (votes, heartbeats, older entries) goes on, so the node
// keeps answering heartbeats but cannot acknowledge new entries: the shape
// of a follower whose disk has stalled. Install it with
// cluster.Config.TestingLogStore = gate.Wrap.
type LogGate struct {
	mu       sync.Mutex
	fromTerm uint64 // 0: not held
	exempt   func() bool
	release  chan struct{}
	blocked  chan struct{} // closed when the first append blocks
	once     sync.Once
}

// NewLogGate returns an open gate.
func NewLogGate() *LogGate {
	return &LogGate{release: make(chan struct{}), blocked: make(chan struct{})}
}

// Hold makes appends of entries with term >= fromTerm block.
func (g *LogGate) Hold(fromTerm uint64) { g.HoldUnless(fromTerm, nil) }

// HoldUnless is Hold, except that appends made while exempt() is true go
// through (for example: while the node leads, so that only a follower's
// appends stall).
func (g *LogGate) HoldUnless(fromTerm uint64, exempt func() bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fromTerm, g.exempt = fromTerm, exempt
}

// Release lets every blocked and future append through. It is safe to call
// more than once.
func (g *LogGate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fromTerm = 0
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

// Blocked is closed once an append has been held back.
func (g *LogGate) Blocked() <-chan struct{} { return g.blocked }

// Wrap returns s behind the gate.
func (g *LogGate) Wrap(s raft.LogStore) raft.LogStore { return &gatedLogStore{LogStore: s, g: g} }

func (g *LogGate) wait(logs []*raft.Log) {
	g.mu.Lock()
	from, release, exempt := g.fromTerm, g.release, g.exempt
	g.mu.Unlock()
	if from == 0 || (exempt != nil && exempt()) {
		return
	}
	for _, l := range logs {
		if l.Term >= from {
			g.once.Do(func() { close(g.blocked) })
			<-release
			return
		}
	}
}

type gatedLogStore struct {
	raft.LogStore
	g *LogGate
}

func (s *gatedLogStore) StoreLog(l *raft.Log) error {
	s.g.wait([]*raft.Log{l})
	return s.LogStore.StoreLog(l)
}

func (s *gatedLogStore) StoreLogs(logs []*raft.Log) error {
	s.g.wait(logs)
	return s.LogStore.StoreLogs(logs)
}
