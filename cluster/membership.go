package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	peerv1 "github.com/optoutd/optoutd/cluster/gen/optout/peer/v1"
	"github.com/optoutd/optoutd/internal/durable"
)

// RemovedMarker is the file written into the data directory when this node
// learns it was removed; a node that finds it refuses to serve until the
// directory is wiped, and the offline tools refuse to recover it.
const RemovedMarker = "REMOVED"

// Membership tuning.
const (
	// promoteLag: a learner within this many entries of the leader's commit
	// index, on two checks in a row, is promoted to voter.
	promoteLag   = 256
	promoteEvery = time.Second
	probeTimeout = time.Second
)

var (
	errTransferring = errors.New("cluster: transferring leadership away before removing this node")
	errRemoved      = ErrNodeRemoved
)

// removedError is what every request to a removed node gets.
func (n *Node) removedError() error {
	return optoutd.WrapError(optoutd.FailedPrecondition, errRemoved,
		"this node (%s) was removed from the cluster; wipe its --data-dir and re-add it with --join to serve again", n.cfg.ID)
}

func (n *Node) markerPath() string { return filepath.Join(n.cfg.DataDir, RemovedMarker) }

func (n *Node) loadRemovedMarker() {
	if b, err := os.ReadFile(n.markerPath()); err == nil {
		n.removed.Store(true)
		n.cancelRemoved()
		n.log.Error("this node was removed from the cluster and will not serve; wipe the data directory to re-add it", "marker", string(b))
	}
}

// markRemoved records that this node is no longer a member, durably, and
// stops its Raft instance so it neither votes nor campaigns.
func (n *Node) markRemoved(index uint64) {
	if !n.removed.CompareAndSwap(false, true) {
		return
	}
	n.cancelRemoved()
	n.log.Error("this node was removed from the cluster; it stops serving", LogKeyIndex, index)
	if err := durable.WriteFile(n.markerPath(), []byte("removed at configuration index "+strconv.FormatUint(index, 10)+"\n"), 0o600); err != nil {
		// The node stops serving now either way; restarted without the
		// marker, it would have to learn of the removal again.
		n.log.Error("writing the removal marker failed", "marker", n.markerPath(), LogKeyErr, err)
	}
	n.broadcastChange()
	go func() { _ = n.shutdownRaft().Error() }()
}

// memberStatus says whether id is in the leader's latest configuration:
// yes; no, and that configuration is committed, so the node really was
// removed (sure); or no, but the configuration that leaves it out is not
// committed yet and may still be lost with this leader (not sure).
func (n *Node) memberStatus(id string) (member, sure bool) {
	servers, idx, err := n.latestConfiguration()
	if err != nil {
		return true, false
	}
	if _, ok := findServer(servers, id); ok {
		return true, true
	}
	return false, idx <= n.raft.CommitIndex()
}

// acceptRemoval handles a Removed notice. The notice itself proves
// nothing (anyone who reaches the Raft port can send one), so the node asks
// the leader, as a read-index round does; only the leader's own "not a
// member" answer, which it gives once the removal is committed, makes this
// node record that it was removed (peerClients.checkRemoved). The sender is
// asked when this node knows no leader.
func (n *Node) acceptRemoval(from string, index uint64) {
	addr, _ := n.raft.LeaderWithID()
	if addr == "" {
		if servers, _, err := n.latestConfiguration(); err == nil {
			if s, ok := findServer(servers, from); ok {
				addr = s.Address
			}
		}
	}
	if addr == "" {
		n.log.Warn("a removal notice arrived, but no leader is known to confirm it; ignoring it", "from", from, LogKeyIndex, index)
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*probeTimeout)
		defer cancel()
		go func() {
			select {
			case <-n.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if _, err := n.peers.readIndex(ctx, string(addr)); err == nil {
			n.log.Warn("a removal notice arrived, but the leader still counts this node as a member; ignoring it", "from", from, LogKeyIndex, index)
		}
	}()
}

// AddMember adds id at raftAddr as a non-voter. It is a no-op if id is
// already a member at that address, unless joining is set: a node joining
// with no state whose id is still a member lost its data, and is refused.
func (n *Node) AddMember(ctx context.Context, id, raftAddr string, joining bool) (uint64, error) {
	if err := checkMemberID(id); err != nil {
		return 0, err
	}
	if err := checkHostPort("raft_address", raftAddr); err != nil {
		return 0, optoutd.Errorf(optoutd.Invalid, "%v", err)
	}
	return n.membership(ctx, memberChange{op: peerv1.MembershipOp_MEMBERSHIP_OP_ADD_NONVOTER, id: id, addr: raftAddr, joining: joining})
}

// checkMemberID refuses an id that cannot be a node's, quoting at most 64
// bytes of it.
func checkMemberID(id string) error {
	if idRE.MatchString(id) {
		return nil
	}
	shown := id
	if len(shown) > 64 {
		shown = shown[:64] + "..."
	}
	return optoutd.Errorf(optoutd.Invalid, "id: %q (%d bytes) must match %s", shown, len(id), idRE)
}

// memberChange is one membership operation.
type memberChange struct {
	op       peerv1.MembershipOp
	id, addr string
	joining  bool
}

// PromoteMember makes a non-voter a voter.
func (n *Node) PromoteMember(ctx context.Context, id string) (uint64, error) {
	if err := checkMemberID(id); err != nil {
		return 0, err
	}
	return n.membership(ctx, memberChange{op: peerv1.MembershipOp_MEMBERSHIP_OP_PROMOTE, id: id})
}

// RemoveMember removes id, transferring leadership first if id leads.
func (n *Node) RemoveMember(ctx context.Context, id string) (uint64, error) {
	if err := checkMemberID(id); err != nil {
		return 0, err
	}
	return n.membership(ctx, memberChange{op: peerv1.MembershipOp_MEMBERSHIP_OP_REMOVE, id: id})
}

// TransferLeadership moves leadership to id (any caught-up voter if "").
func (n *Node) TransferLeadership(ctx context.Context, id string) (string, error) {
	if id != "" {
		if err := checkMemberID(id); err != nil {
			return "", err
		}
	}
	if _, err := n.membership(ctx, memberChange{op: peerv1.MembershipOp_MEMBERSHIP_OP_TRANSFER_LEADERSHIP, id: id}); err != nil {
		return "", err
	}
	// Report the leader once one is known again.
	for ctx.Err() == nil {
		if lid, _ := n.Leader(); lid != "" {
			return lid, nil
		}
		select {
		case <-n.changes():
		case <-ctx.Done():
		}
	}
	return "", nil
}

// membership runs a configuration change on the leader, forwarding from a
// follower and retrying while the failure is certainly "not applied".
func (n *Node) membership(ctx context.Context, mc memberChange) (uint64, error) {
	if n.removed.Load() {
		return 0, n.removedError()
	}
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	backoff := 5 * time.Millisecond
	for {
		changed := n.changes()
		var (
			idx uint64
			err error
		)
		if n.raft.State() == raft.Leader {
			idx, err = n.changeLocal(ctx, mc)
		} else if laddr, lid := n.raft.LeaderWithID(); laddr != "" && string(lid) != n.cfg.ID {
			idx, err = n.peers.changeMembership(ctx, string(laddr), mc)
		} else {
			err = &notAppliedError{errNoLeader}
		}
		var na *notAppliedError
		if err == nil || !errors.As(err, &na) {
			if err != nil {
				return 0, writeError(ctx, err)
			}
			return idx, nil
		}
		select {
		case <-changed:
		case <-time.After(backoff):
		case <-ctx.Done():
			return 0, writeError(ctx, &notAppliedError{fmt.Errorf("%w (last attempt: %w)", ctx.Err(), na.err)})
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// changeLocal applies a membership change on this node, the leader.
// Changes are judged and made one at a time (memberMu): each one is
// checked against the configuration that the previous one left, and is
// proposed with that configuration's index as prevIndex, so hashicorp/raft
// refuses it if the configuration changed in between anyway (a change made
// by another leader in a term this node missed).
func (n *Node) changeLocal(ctx context.Context, mc memberChange) (uint64, error) {
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	op, id, addr := mc.op, mc.id, mc.addr
	servers, prev, err := n.latestConfiguration()
	if err != nil {
		return 0, classifyRaftErr(err)
	}
	cur, found := findServer(servers, id)
	timeout := time.Until(deadlineOf(ctx, n.cfg.RequestTimeout))
	var f raft.IndexFuture
	switch op {
	case peerv1.MembershipOp_MEMBERSHIP_OP_ADD_NONVOTER:
		if found && string(cur.Address) == addr && (!mc.joining || cur.Suffrage == raft.Nonvoter) {
			// Already there. For a join this is the retry of an attempt
			// whose answer was lost: a learner holds no vote, so one that
			// really lost its data is harmless and is fed a snapshot.
			return 0, nil
		}
		if found && mc.joining {
			return 0, optoutd.Errorf(optoutd.FailedPrecondition,
				"%s is already a voter, but it is joining with no data: it lost its state. Remove it first (optoutctl members remove %s), then join again", id, id)
		}
		if found {
			return 0, optoutd.Errorf(optoutd.FailedPrecondition, "%s is already a member at %s; remove it before adding it at %s", id, cur.Address, addr)
		}
		for _, s := range servers {
			if string(s.Address) == addr {
				return 0, optoutd.Errorf(optoutd.FailedPrecondition, "raft address %s already belongs to member %s", addr, s.ID)
			}
		}
		f = n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), prev, timeout)
	case peerv1.MembershipOp_MEMBERSHIP_OP_PROMOTE:
		if !found {
			return 0, optoutd.Errorf(optoutd.NotFound, "%s is not a member", id)
		}
		if cur.Suffrage == raft.Voter {
			return 0, nil
		}
		f = n.raft.AddVoter(cur.ID, cur.Address, prev, timeout)
	case peerv1.MembershipOp_MEMBERSHIP_OP_REMOVE:
		if !found {
			return 0, optoutd.Errorf(optoutd.NotFound, "%s is not a member", id)
		}
		if err := n.checkQuorumAfterRemoval(ctx, servers, id); err != nil {
			return 0, err
		}
		if id == n.cfg.ID {
			if err := waitFuture(ctx, n.raft.LeadershipTransfer()); err != nil {
				return 0, &notAppliedError{fmt.Errorf("transfer leadership before removing %s: %w", id, err)}
			}
			return 0, &notAppliedError{errTransferring}
		}
		f = n.raft.RemoveServer(cur.ID, prev, timeout)
	case peerv1.MembershipOp_MEMBERSHIP_OP_TRANSFER_LEADERSHIP:
		var tf raft.Future
		if id == "" {
			tf = n.raft.LeadershipTransfer()
		} else if !found || cur.Suffrage != raft.Voter {
			return 0, optoutd.Errorf(optoutd.FailedPrecondition, "%s is not a voter", id)
		} else if id == n.cfg.ID {
			return 0, nil
		} else {
			tf = n.raft.LeadershipTransferToServer(cur.ID, cur.Address)
		}
		return 0, classifyRaftErr(waitFuture(ctx, tf))
	default:
		return 0, optoutd.Errorf(optoutd.Invalid, "unknown membership operation %v", op)
	}
	if err := waitFuture(ctx, f); err != nil {
		return 0, classifyRaftErr(err)
	}
	n.log.Info("membership changed", "op", op.String(), LogKeyNode, id, LogKeyIndex, f.Index())
	if op == peerv1.MembershipOp_MEMBERSHIP_OP_REMOVE {
		n.notifyRemoved(cur, f.Index())
	}
	return f.Index(), nil
}

// notifyRemoved tells a removed node, which then asks this leader to
// confirm (see acceptRemoval).
func (n *Node) notifyRemoved(s raft.Server, index uint64) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*probeTimeout)
		defer cancel()
		if err := n.peers.removed(ctx, string(s.Address), index); err != nil {
			n.log.Warn("could not tell the removed node; it stops serving when it next restarts or hears of it", LogKeyNode, string(s.ID), LogKeyErr, err)
		}
	}()
}

// checkQuorumAfterRemoval refuses a removal that would leave the cluster
// without a reachable majority of its remaining voters.
func (n *Node) checkQuorumAfterRemoval(ctx context.Context, servers []raft.Server, id string) error {
	var remaining []raft.Server
	for _, s := range servers {
		if s.Suffrage == raft.Voter && string(s.ID) != id {
			remaining = append(remaining, s)
		}
	}
	if victim, _ := findServer(servers, id); victim.Suffrage != raft.Voter {
		return nil
	}
	if len(remaining) == 0 {
		return optoutd.Errorf(optoutd.FailedPrecondition, "refusing to remove %s: it is the last voter", id)
	}
	reachable := 0
	for _, s := range remaining {
		if string(s.ID) == n.cfg.ID {
			reachable++
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		_, err := n.peers.info(pctx, string(s.Address))
		cancel()
		if err == nil {
			reachable++
		}
	}
	if need := len(remaining)/2 + 1; reachable < need {
		return optoutd.Errorf(optoutd.FailedPrecondition,
			"refusing to remove %s: the %d remaining voters need %d reachable for a quorum, and only %d are; bring members back first",
			id, len(remaining), need, reachable)
	}
	return nil
}

// autoPromote promotes learners that have caught up, while this node leads.
func (n *Node) autoPromote(ctx context.Context) {
	defer n.wg.Done()
	tick := time.NewTicker(promoteEvery)
	defer tick.Stop()
	streak := map[raft.ServerID]int{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		servers, prev, err := n.latestConfiguration()
		if err != nil {
			continue
		}
		for _, s := range servers {
			if s.Suffrage != raft.Nonvoter {
				delete(streak, s.ID)
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			info, err := n.peers.info(pctx, string(s.Address))
			cancel()
			if err != nil || info.AppliedIndex+promoteLag < n.raft.CommitIndex() {
				streak[s.ID] = 0
				continue
			}
			if streak[s.ID]++; streak[s.ID] < 2 {
				continue
			}
			if n.promote(ctx, s, prev) {
				delete(streak, s.ID)
			}
		}
	}
}

// promote makes learner s a voter, unless the configuration changed since
// index prev, the one s was probed under: an operator may have removed it
// while the probe was out, and promoting it then would bring it back.
func (n *Node) promote(ctx context.Context, s raft.Server, prev uint64) bool {
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	servers, now, err := n.latestConfiguration()
	if err != nil || now != prev {
		return false
	}
	if cur, ok := findServer(servers, string(s.ID)); !ok || cur.Suffrage != raft.Nonvoter || cur.Address != s.Address {
		return false
	}
	f := n.raft.AddVoter(s.ID, s.Address, prev, n.cfg.RequestTimeout)
	if err := waitFuture(ctx, f); err != nil {
		n.log.Warn("promoting caught-up learner failed", LogKeyNode, string(s.ID), LogKeyErr, err)
		return false
	}
	n.log.Info("promoted caught-up learner to voter", LogKeyNode, string(s.ID), LogKeyIndex, f.Index())
	return true
}

func findServer(servers []raft.Server, id string) (raft.Server, bool) {
	for _, s := range servers {
		if string(s.ID) == id {
			return s, true
		}
	}
	return raft.Server{}, false
}

func deadlineOf(ctx context.Context, def time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(def)
}

// classifyRaftErr marks the hashicorp/raft errors that happen before a
// change is appended as "not applied"; the rest may have been applied.
func classifyRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return &notAppliedError{err}
	case strings.HasPrefix(err.Error(), "configuration changed since"):
		// nextConfiguration refused a stale prevIndex before appending
		// anything (hashicorp/raft has no sentinel for it).
		return &notAppliedError{err}
	default:
		return &unknownOutcomeError{err}
	}
}
