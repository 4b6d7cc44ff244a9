package cluster

import (
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/fsm"
	"github.com/prometheus/client_golang/prometheus"
)

// nodeCollector reads the node's Raft and storage state at scrape time, so
// the gauges are never stale and cost nothing between scrapes.
type nodeCollector struct {
	n *Node

	state, term, commit, applied, lastLog, lastSnap, lastContact *prometheus.Desc
	voters, ready, halted, removed, fsmBytes, raftBytes          *prometheus.Desc
	fsmCommits, fsmSyncs                                         *prometheus.Desc
}

func newNodeCollector(n *Node) *nodeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("optoutd_"+name, help, labels, nil)
	}
	return &nodeCollector{
		n:           n,
		state:       d("raft_state", "1 for this node's current Raft state (Leader, Follower, Candidate, Shutdown).", "state"),
		term:        d("raft_term", "Current Raft term."),
		commit:      d("raft_commit_index", "Highest log index known committed."),
		applied:     d("raft_applied_index", "Highest log index this node's state machine has applied."),
		lastLog:     d("raft_last_log_index", "Last index in this node's Raft log."),
		lastSnap:    d("raft_last_snapshot_index", "Index of the newest snapshot on disk."),
		lastContact: d("raft_last_contact_seconds", "Seconds since a follower last heard from the leader (0 on the leader)."),
		voters:      d("raft_voters", "Voters in the latest Raft configuration."),
		ready:       d("node_ready", "1 when the node serves linearizable requests (/readyz)."),
		halted:      d("fsm_halted", "1 when the state machine stopped on an entry it cannot apply."),
		removed:     d("node_removed", "1 when this node was removed from the cluster."),
		fsmBytes:    d("fsm_db_bytes", "Size of fsm.db."),
		raftBytes:   d("raft_db_bytes", "Size of raft.db."),
		fsmCommits:  d("fsm_commits_total", "bbolt transactions of applied entries committed (a large batch of entries is split, 1 MiB of commands each)."),
		fsmSyncs:    d("fsm_deferred_syncs_total", "fsyncs of fsm.db done every --fsm-sync-interval instead of on each commit."),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.term, c.commit, c.applied, c.lastLog, c.lastSnap, c.lastContact,
		c.voters, c.ready, c.halted, c.removed, c.fsmBytes, c.raftBytes, c.fsmCommits, c.fsmSyncs} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st := n.raft.State()
	for _, s := range []raft.RaftState{raft.Leader, raft.Follower, raft.Candidate, raft.Shutdown} {
		g(c.state, b2f(s == st), s.String())
	}
	g(c.term, float64(n.raft.CurrentTerm()))
	g(c.commit, float64(n.raft.CommitIndex()))
	g(c.applied, float64(n.fsm.AppliedIndex()))
	g(c.lastLog, float64(n.raft.LastIndex()))
	if snaps, err := n.snapStore.List(); err == nil && len(snaps) > 0 {
		g(c.lastSnap, float64(snaps[0].Index))
	}
	contact := 0.0
	if st != raft.Leader {
		if lc := n.raft.LastContact(); !lc.IsZero() {
			contact = time.Since(lc).Seconds()
		}
	}
	g(c.lastContact, contact)
	if cf := n.raft.GetConfiguration(); cf.Error() == nil {
		g(c.voters, float64(countVoters(cf.Configuration().Servers)))
	}
	g(c.ready, b2f(n.Ready() == nil))
	g(c.halted, b2f(n.fsm.Halted() != nil))
	g(c.removed, b2f(n.removed.Load()))
	g(c.fsmBytes, float64(n.fsm.DiskSize()))
	ch <- prometheus.MustNewConstMetric(c.fsmCommits, prometheus.CounterValue, float64(n.fsm.Commits()))
	ch <- prometheus.MustNewConstMetric(c.fsmSyncs, prometheus.CounterValue, float64(n.fsm.DeferredSyncs()))
	if st, err := os.Stat(filepath.Join(n.cfg.DataDir, "raft.db")); err == nil {
		g(c.raftBytes, float64(st.Size()))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// instrumentedFSM times what hashicorp/raft asks of the state machine.
type instrumentedFSM struct {
	*fsm.FSM
	m *metrics
}

func (f instrumentedFSM) ApplyBatch(logs []*raft.Log) []interface{} {
	start := time.Now()
	out := f.FSM.ApplyBatch(logs)
	f.m.applySeconds.Observe(time.Since(start).Seconds())
	f.m.applyEntries.Add(float64(len(logs)))
	return out
}

func (f instrumentedFSM) Apply(l *raft.Log) interface{} { return f.ApplyBatch([]*raft.Log{l})[0] }

func (f instrumentedFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.FSM.Snapshot()
	if err != nil {
		return nil, err
	}
	return instrumentedSnapshot{FSMSnapshot: s, m: f.m}, nil
}

func (f instrumentedFSM) Restore(rc io.ReadCloser) error {
	start := time.Now()
	err := f.FSM.Restore(rc)
	f.m.restoreSeconds.Observe(time.Since(start).Seconds())
	return err
}

type instrumentedSnapshot struct {
	raft.FSMSnapshot
	m *metrics
}

func (s instrumentedSnapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	err := s.FSMSnapshot.Persist(sink)
	s.m.persistSeconds.Observe(time.Since(start).Seconds())
	return err
}
