package cluster

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"github.com/optoutd/optoutd/fsm"
)

// registerEvery is how often a node checks that the cluster knows its API
// address (it also checks on every leader change).
const registerEvery = 2 * time.Second

// watchLeadership reacts to leadership changes: a new leader proves its term
// before serving reads, and every node makes sure its API address is known.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	obsCh := make(chan raft.Observation, 64)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	tick := time.NewTicker(registerEvery)
	defer tick.Stop()

	cancelEstablish := func() {}
	defer func() { cancelEstablish() }()
	for {
		select {
		case isLeader := <-n.leaderNotify:
			cancelEstablish()
			n.readyTerm.Store(0)
			if isLeader {
				ctx, cancel := context.WithCancel(context.Background())
				cancelEstablish = cancel
				n.wg.Add(2)
				go n.establish(ctx)
				go n.autoPromote(ctx)
			}
			n.broadcastChange()
		case o := <-obsCh:
			lo := o.Data.(raft.LeaderObservation)
			n.log.Info("leader changed", LogKeyLeader, string(lo.LeaderID), LogKeyTerm, n.raft.CurrentTerm())
			n.broadcastChange()
			n.maybeRegister()
		case <-tick.C:
			n.maybeRegister()
		case <-n.stop:
			return
		}
	}
}

// establish commits a TermStart entry in the new term (after initialising a
// new cluster). Until it is applied here the leader's commit index may lag
// entries committed by its predecessor, so reads and writes wait for it (see
// DESIGN.md, "The read path").
func (n *Node) establish(ctx context.Context) {
	defer n.wg.Done()
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil && n.raft.State() == raft.Leader {
		data, err := n.establishCommands()
		if err != nil {
			n.log.Error("encode term start", LogKeyErr, err)
			return
		}
		var f raft.ApplyFuture
		for _, d := range data {
			if f, err = n.applyStamped(d, n.cfg.RequestTimeout); err != nil {
				break
			}
		}
		if err == nil {
			err = waitFuture(ctx, f)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			n.log.Warn("term start entry failed; retrying while still leader", LogKeyErr, err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		res, ok := f.Response().(*fsmv1.Result)
		if !ok || ctx.Err() != nil {
			return
		}
		n.readyTerm.Store(res.Term)
		n.log.Info("leader ready to serve reads", LogKeyTerm, res.Term, LogKeyIndex, res.Index)
		n.broadcastChange()
		return
	}
}

// waitFuture waits for f, or for ctx. hashicorp/raft (with BatchApplyCh)
// never answers a future still queued when it shuts down, so waiting on
// f.Error alone could block Close forever.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// establishCommands is TermStart, preceded by InitCluster on a cluster that
// has never been initialised (every leader checks; the first InitCluster to
// commit wins and later ones change nothing).
func (n *Node) establishCommands() ([][]byte, error) {
	var out [][]byte
	var initialized bool
	err := n.fsm.View(func(r *fsm.Reader) error {
		s, err := r.Settings()
		initialized = s.Initialized
		return err
	})
	if err != nil {
		return nil, err
	}
	if !initialized {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		catalog := optoutd.StarterCatalog
		if n.cfg.NoDefaultCatalog {
			catalog = nil
		}
		d, err := command.Encode(command.InitCluster(key, n.cfg.BootstrapTokenSHA256, catalog), time.Time{}) // stamped by applyStamped
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	d, err := command.Encode(command.TermStart(n.cfg.ID), time.Time{})
	return append(out, d), err
}

// maybeRegister proposes this node's API address if the replicated node
// table does not have it yet. At most one registration runs at a time.
func (n *Node) maybeRegister() {
	if n.cfg.APIAdvertise == "" || n.registered() {
		return
	}
	if addr, _ := n.raft.LeaderWithID(); addr == "" {
		return
	}
	if !n.registering.CompareAndSwap(false, true) {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.registering.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
		defer cancel()
		go func() {
			select {
			case <-n.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		_, err := n.proposeCommand(ctx, command.RegisterNode(n.cfg.ID, n.cfg.APIAdvertise))
		if err != nil {
			n.log.Debug("registering API address failed; will retry", LogKeyErr, err)
			return
		}
		n.log.Info("registered API address", LogKeyAddr, n.cfg.APIAdvertise)
	}()
}

func (n *Node) registered() bool {
	var ok bool
	_ = n.fsm.View(func(r *fsm.Reader) error {
		m, err := r.NodeAPIAddresses()
		ok = err == nil && m[n.cfg.ID] == n.cfg.APIAdvertise
		return err
	})
	return ok
}
