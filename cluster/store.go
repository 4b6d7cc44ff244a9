package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"github.com/optoutd/optoutd/fsm"
	"google.golang.org/protobuf/proto"
)

// readyLag is how many entries a node may have committed but not applied
// and still call itself ready. Under load the gap is a few batches wide; a
// node catching up after a restart is far beyond it.
const readyLag = 1024

// Set validates and applies one write. Errors are *optoutd.Error; with
// Unavailable the write was certainly not applied, with OutcomeUnknown it
// may have been.
func (n *Node) Set(ctx context.Context, req optoutd.SetRequest) (optoutd.SetResult, error) {
	if err := optoutd.ValidateSet(req); err != nil {
		return optoutd.SetResult{}, err
	}
	res, err := n.write(ctx, command.Set(req, n.cfg.IdempotencyWindow))
	if err != nil {
		return optoutd.SetResult{}, err
	}
	return command.SetResultOf(req.Key, res)
}

// DefinePurpose creates or redefines a catalog entry. expectedCatalog, if
// not nil, makes it a compare-and-set on the catalog version.
func (n *Node) DefinePurpose(ctx context.Context, p optoutd.Purpose, expectedCatalog *uint64, client uint32, caller string) (optoutd.Purpose, uint64, error) {
	if err := optoutd.ValidatePurposeDef(p); err != nil {
		return optoutd.Purpose{}, 0, err
	}
	res, err := n.write(ctx, command.DefinePurpose(p, expectedCatalog, client, caller))
	if err != nil {
		return optoutd.Purpose{}, 0, err
	}
	return command.PurposeFromStored(res.Purpose), res.CatalogVersion, nil
}

// UpdateSettings changes the replicated settings; nil fields stay.
func (n *Node) UpdateSettings(ctx context.Context, minSchema *uint32, retention *time.Duration, client uint32, caller string) (optoutd.Settings, error) {
	res, err := n.write(ctx, command.UpdateSettings(minSchema, retention, client, caller))
	if err != nil {
		return optoutd.Settings{}, err
	}
	return command.SettingsOf(res), nil
}

// EraseSubject removes a subject's identifier and keeps its suppression.
// It returns the erasure's version and how many records were erased.
func (n *Node) EraseSubject(ctx context.Context, subject, reason string, client uint32, caller string) (uint64, uint32, error) {
	if err := optoutd.ValidateSubjectID(subject); err != nil {
		return 0, 0, err
	}
	res, err := n.write(ctx, command.EraseSubject(subject, reason, client, caller))
	if err != nil {
		return 0, 0, err
	}
	return res.Index, res.ErasedRecords, nil
}

// write proposes a command with the request's deadline and turns both
// transport failures and rule violations into domain errors.
func (n *Node) write(ctx context.Context, payload proto.Message) (*fsmv1.Result, error) {
	if n.removed.Load() {
		return nil, n.removedError()
	}
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	// A removed node can forward nothing: end the retries with the removal
	// instead of the deadline.
	ctx, cancelRemoved := n.untilRemoved(ctx)
	defer cancelRemoved()
	res, err := n.proposeCommand(ctx, payload)
	var na *notAppliedError
	if err != nil && errors.As(err, &na) && errors.Is(context.Cause(ctx), errRemoved) {
		return nil, n.removedError()
	}
	if err != nil {
		return nil, writeError(ctx, err)
	}
	if err := command.ResultError(res); err != nil {
		return nil, err
	}
	return res, nil
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

// ReadLocal runs fn against this node's current state without a read
// index: the answer may be stale, and fn can see how stale through
// View.AppliedIndex.
func (n *Node) ReadLocal(fn func(optoutd.View) error) error {
	if n.removed.Load() {
		return n.removedError()
	}
	err := n.fsm.View(func(r *fsm.Reader) error { return fn(r) })
	if errors.Is(err, fsm.ErrHalted) {
		return optoutd.WrapError(optoutd.Halted, err, "this node halted applying the log")
	}
	return err
}

// WaitApplied blocks until this node's state machine has applied index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	err := n.fsm.WaitApplied(ctx, index)
	if errors.Is(err, fsm.ErrHalted) {
		return optoutd.WrapError(optoutd.Halted, err, "this node halted applying the log")
	}
	return err
}

// Fresh reports whether this node started with no Raft state at all (it
// was neither bootstrapped nor added yet).
func (n *Node) Fresh() bool { return n.fresh }
