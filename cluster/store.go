package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/fsm"
	fsmv1 "github.com/optoutd/optoutd/fsm/gen/optout/fsm/v1"
)

// readyLag is how many entries a node may have committed but not applied
// and still call itself ready. Under load the gap is a few batches wide; a
// node catching up after a restart is far beyond it.
const readyLag = 1024

// Set validates and applies one write. Errors are *optoutd.Error; with
// Unavailable the write was certainly not applied, with OutcomeUnknown it
// may have been.
func (n *Node) Set(ctx context.Context, req optoutd.SetRequest) (optoutd.Record, error) {
	if err := optoutd.ValidateSet(req); err != nil {
		return optoutd.Record{}, err
	}
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	res, err := n.proposeCommand(ctx, fsmv1.CommandType_COMMAND_TYPE_SET, &fsmv1.SetCommand{
		SubjectId:       req.SubjectID,
		Purpose:         req.Purpose,
		State:           fsm.StateToProto(req.State),
		Source:          req.Source,
		Reason:          req.Reason,
		ExpectedVersion: req.ExpectedVersion,
	})
	if err != nil {
		return optoutd.Record{}, writeError(ctx, err)
	}
	if err := resultError(res); err != nil {
		return optoutd.Record{}, err
	}
	if res.Record == nil {
		return optoutd.Record{}, optoutd.Errorf(optoutd.Internal, "set at index %d returned no record", res.Index)
	}
	return fsm.RecordFromStored(req.Key, res.Record), nil
}

// resultError turns a rule violation reported by the state machine into a
// domain error. The write was applied as a no-op; nothing changed.
func resultError(res *fsmv1.Result) error {
	switch res.ErrorCode {
	case fsmv1.ErrorCode_ERROR_CODE_UNSPECIFIED:
		return nil
	case fsmv1.ErrorCode_ERROR_CODE_VERSION_MISMATCH:
		return &optoutd.Error{Code: optoutd.VersionMismatch, Message: res.ErrorMessage, CurrentVersion: res.CurrentVersion}
	default:
		return optoutd.Errorf(optoutd.Invalid, "%s", res.ErrorMessage)
	}
}

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

// Ready returns nil when this node knows a leader and has applied (nearly)
// up to the commit index it has learned; otherwise the reason it is not.
func (n *Node) Ready() error {
	if err := n.fsm.Halted(); err != nil {
		return fmt.Errorf("state machine halted: %w", err)
	}
	if _, id := n.raft.LeaderWithID(); id == "" {
		return errors.New("no leader known")
	}
	if ci, ai := n.raft.CommitIndex(), n.fsm.AppliedIndex(); ai+readyLag < ci {
		return fmt.Errorf("catching up: applied %d of %d", ai, ci)
	}
	return nil
}

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
