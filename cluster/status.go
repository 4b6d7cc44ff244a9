package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/fsm"
)

// readyLag is how many entries a node may have committed but not applied
// and still call itself ready. Under load the gap is a few batches wide; a
// node catching up after a restart is far beyond it.
const readyLag = 1024

// Status reports this node's view; it is not linearizable.
func (n *Node) Status(context.Context) (optoutd.ClusterStatus, error) {
	st := optoutd.ClusterStatus{
		NodeID:       n.cfg.ID,
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.fsm.AppliedIndex(),
		RaftState:    n.raft.State().String(),
	}
	_, leader := n.raft.LeaderWithID()
	st.LeaderID = string(leader)
	st.LastLogIndex = n.raft.LastIndex()
	st.FirstLogIndex, _ = n.logStore.FirstIndex()
	if snaps, err := n.snapStore.List(); err == nil && len(snaps) > 0 {
		st.LastSnapshotIndex = snaps[0].Index
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return st, optoutd.WrapError(optoutd.Unavailable, err, "reading the raft configuration")
	}
	var apis map[string]string
	err := n.fsm.View(func(r *fsm.Reader) (err error) { apis, err = r.NodeAPIAddresses(); return })
	if err != nil && !errors.Is(err, fsm.ErrHalted) {
		return st, fmt.Errorf("cluster: status: %w", err)
	}
	for _, s := range cf.Configuration().Servers {
		st.Nodes = append(st.Nodes, optoutd.NodeStatus{
			ID:          string(s.ID),
			RaftAddress: string(s.Address),
			APIAddress:  apis[string(s.ID)],
			Voter:       s.Suffrage == raft.Voter,
			Leader:      s.ID == leader,
		})
	}
	return st, nil
}

// Ready returns nil when this node knows a leader and has applied up to the
// commit index it has learned (after a leader change, fully; then within
// readyLag entries); otherwise the reason it is not.
func (n *Node) Ready() error {
	if n.removed.Load() {
		return errRemoved
	}
	if err := n.fsm.Halted(); err != nil {
		return fmt.Errorf("state machine halted: %w", err)
	}
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return errors.New("no leader known")
	}
	ci, ai := n.raft.CommitIndex(), n.fsm.AppliedIndex()
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	if id != n.readyLeader {
		// A new leader: be ready only once fully caught up with it.
		n.readyLeader, n.caughtUp = id, false
	}
	if !n.caughtUp {
		if ai < ci {
			return fmt.Errorf("catching up with leader %s: applied %d of %d", id, ai, ci)
		}
		n.caughtUp = true
	}
	// Once caught up, a small lag under load is normal and not a reason to
	// be taken out of rotation.
	if ai+readyLag < ci {
		return fmt.Errorf("catching up: applied %d of %d", ai, ci)
	}
	return nil
}

// IsLeader reports whether this node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's ID and Raft address, empty when unknown.
func (n *Node) Leader() (id, raftAddr string) {
	addr, lid := n.raft.LeaderWithID()
	return string(lid), string(addr)
}

// FirstLogIndex is the oldest entry still in this node's Raft log; entries
// before it live only in snapshots.
func (n *Node) FirstLogIndex() (uint64, error) { return n.logStore.FirstIndex() }

// StateDigest hashes this node's local state; see fsm.Reader.Digest.
func (n *Node) StateDigest(context.Context) (optoutd.StateDigest, error) {
	d := optoutd.StateDigest{NodeID: n.cfg.ID}
	err := n.fsm.View(func(r *fsm.Reader) (err error) {
		d.AppliedIndex = r.AppliedIndex()
		d.SHA256, d.Records, err = r.Digest()
		return err
	})
	if err != nil {
		return d, fmt.Errorf("cluster: state digest: %w", err)
	}
	return d, nil
}

// Fresh reports whether this node started with no Raft state at all (it
// was neither bootstrapped nor added yet).
func (n *Node) Fresh() bool { return n.fresh }
