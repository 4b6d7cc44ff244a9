package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/optoutd/optoutd/cluster/gen/optout/peer/v1/peerv1connect"
	"github.com/optoutd/optoutd/fsm"
	"go.etcd.io/bbolt"
)

// Node is one member of the cluster: the Raft instance, its stores and
// transport, the state machine, the read-index loop and the peer RPC.
type Node struct {
	cfg Config
	log *slog.Logger

	fsm       *fsm.FSM
	logStore  *raftboltdb.BoltStore
	configLog *configLog // what raft writes its log through
	snapStore *snapStore
	trans     *raft.NetworkTransport
	acks      *ackTracker // fresh acknowledgements seen by trans
	raft      *raft.Raft
	mux       *mux
	peerSrv   *http.Server
	peers     *peerClients

	// readyTerm is the term whose TermStart entry this node, as leader, has
	// seen applied. Reads are served as leader only while it equals the
	// current term.
	readyTerm atomic.Uint64

	// changed is closed and replaced whenever leadership or readiness
	// changes, waking requests that wait for a leader.
	changedMu sync.Mutex
	changed   chan struct{}

	readQ chan chan readResult

	metrics      *metrics
	leaderNotify <-chan bool
	registering  atomic.Bool
	memberMu     sync.Mutex  // one membership change at a time on this node
	stamps       stamper     // the time this node, as leader, stamps into entries
	removed      atomic.Bool // this node was removed from the cluster
	// leaderHint caches LeaderAPIAddress.
	leaderHint atomic.Pointer[leaderHint]
	// removedCtx ends (cancelRemoved) when removed becomes true.
	removedCtx    context.Context
	cancelRemoved context.CancelFunc
	fresh         bool // no Raft state at start

	readyMu     sync.Mutex
	readyLeader raft.ServerID // the leader Ready last saw
	caughtUp    bool          // applied reached commit since readyLeader

	// raftDown is the one shutdown of Raft (by Close, or on removal):
	// hashicorp/raft answers a second Shutdown with a future that does not
	// wait, so everyone waits on the first.
	raftDownMu sync.Mutex
	raftDown   raft.Future

	stop     chan struct{}
	wg       sync.WaitGroup
	closeErr error
	closed   sync.Once
}

// compressMinBytes: smaller messages are sent uncompressed (gzip costs more
// CPU than it saves on the small messages that dominate).
const compressMinBytes = 4096

// Open starts a node: it opens the stores, bootstraps a new cluster if this
// node has no state and InitialCluster is set, and joins the Raft group.
func Open(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger.With(LogKeyNode, cfg.ID),
		changed: make(chan struct{}),
		readQ:   make(chan chan readResult, 1024),
		stop:    make(chan struct{}),
		metrics: newMetrics(cfg.Metrics),
		acks:    newAckTracker(),
	}
	n.removedCtx, n.cancelRemoved = context.WithCancel(context.Background())
	if err := n.open(); err != nil {
		_ = n.closeStores()
		return nil, err
	}
	return n, nil
}

func (n *Node) open() error {
	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	var err error
	n.loadRemovedMarker()
	n.fsm, err = fsm.Open(fsm.Config{Path: filepath.Join(n.cfg.DataDir, "fsm.db"), Logger: n.log, SyncInterval: n.cfg.FSMSyncInterval})
	if err != nil {
		return err
	}
	n.logStore, err = raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(n.cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{
			Timeout:        time.Second,
			NoFreelistSync: true,
			FreelistType:   bbolt.FreelistMapType,
		},
	})
	if err != nil {
		return fmt.Errorf("cluster: open raft.db: %w", err)
	}
	fss, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, n.cfg.SnapshotsRetained, newHCLog(n.log))
	if err != nil {
		return fmt.Errorf("cluster: open snapshot store: %w", err)
	}
	n.snapStore = newSnapStore(fss)
	if err := n.catchUpFromSnapshot(); err != nil {
		return err
	}
	if err := n.listen(); err != nil {
		return err
	}
	if err := n.startRaft(); err != nil {
		return err
	}
	n.wg.Add(2)
	go n.runReadLoop()
	go n.watchLeadership()
	return nil
}

// catchUpFromSnapshot restores the FSM from the newest snapshot when the
// snapshot is ahead of it. Raft is started with NoSnapshotRestoreOnStart
// (fsm.db is durable, so restoring on every start would only cost time), and
// then believes everything up to the snapshot index is applied. That is
// false only if the process died between writing a snapshot received from
// the leader and restoring it; this closes that gap.
func (n *Node) catchUpFromSnapshot() error {
	snaps, err := n.snapStore.List()
	if err != nil {
		return fmt.Errorf("cluster: list snapshots: %w", err)
	}
	if len(snaps) == 0 || snaps[0].Index <= n.fsm.AppliedIndex() {
		return nil
	}
	n.log.Warn("state machine is behind the newest snapshot; restoring it",
		"fsm_index", n.fsm.AppliedIndex(), "snapshot_index", snaps[0].Index)
	_, rc, err := n.snapStore.Open(snaps[0].ID)
	if err != nil {
		return fmt.Errorf("cluster: open snapshot %s: %w", snaps[0].ID, err)
	}
	return n.fsm.Restore(rc)
}

func (n *Node) listen() error {
	ln, err := n.cfg.Network.Listen(n.cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("--raft-addr: listen on %s: %w", n.cfg.RaftAddr, err)
	}
	n.mux = newMux(ln, n.cfg.PeerTLS, n.log)
	go n.mux.serve()

	// The advertised address is passed on as written: a DNS name that does
	// not resolve yet (a Kubernetes pod before its record exists) must not
	// stop the node from starting.
	var adv net.Addr
	if n.cfg.RaftAdvertise != "" {
		adv = advertisedAddr(n.cfg.RaftAdvertise)
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{chanListener: n.mux.raft, nw: n.cfg.Network, tls: n.cfg.PeerTLS, advertise: adv},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  newHCLog(n.log),
	})

	n.peers = newPeerClients(n.cfg.Network, n.cfg.PeerTLS, n.cfg.ID, func() { n.markRemoved(0) })
	path, h := peerv1connect.NewPeerServiceHandler(&peerServer{n: n}, connect.WithCompressMinBytes(compressMinBytes),
		connect.WithReadMaxBytes(maxPeerRequestBytes))
	hm := http.NewServeMux()
	hm.Handle(path, h)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	n.peerSrv = &http.Server{Handler: hm, Protocols: &protos, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = n.peerSrv.Serve(n.mux.peer) }()
	return nil
}

func (n *Node) startRaft() error {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.ID)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.TrailingLogs = n.cfg.TrailingLogs
	rc.NoSnapshotRestoreOnStart = true
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.Logger = newHCLog(n.log)
	notify := make(chan bool, 16)
	rc.NotifyCh = notify
	n.leaderNotify = notify

	var logs raft.LogStore = n.logStore
	if n.cfg.TestingLogStore != nil {
		logs = n.cfg.TestingLogStore(logs)
	}
	var snapIndex uint64
	if snaps, err := n.snapStore.List(); err == nil && len(snaps) > 0 {
		snapIndex = snaps[0].Index
	}
	cl, err := newConfigLog(logs, snapIndex)
	if err != nil {
		return err
	}
	n.configLog = cl
	trans := &ackTransport{NetworkTransport: n.trans, acks: n.acks}
	r, err := raft.NewRaft(rc, instrumentedFSM{FSM: n.fsm, m: n.metrics}, cl, n.logStore, n.snapStore, trans)
	if err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raft = r
	if n.cfg.Metrics != nil {
		if err := n.cfg.Metrics.Register(newNodeCollector(n)); err != nil {
			return fmt.Errorf("cluster: register metrics: %w", err)
		}
	}
	return n.bootstrap()
}

// bootstrap writes the initial configuration on a node that has none. Every
// node of a new cluster does this with the same list; a node with existing
// state never does, so restarting with the same flags is harmless.
func (n *Node) bootstrap() error {
	if len(n.cfg.InitialCluster) == 0 {
		has, err := raft.HasExistingState(n.configLog, n.logStore, n.snapStore)
		n.fresh = err == nil && !has
		return err
	}
	has, err := raft.HasExistingState(n.configLog, n.logStore, n.snapStore)
	if err != nil {
		return fmt.Errorf("cluster: check existing state: %w", err)
	}
	n.fresh = !has
	if has {
		n.log.Info("existing state found; not bootstrapping")
		return nil
	}
	var servers []raft.Server
	for _, id := range sortedKeys(n.cfg.InitialCluster) {
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(n.cfg.InitialCluster[id]), Suffrage: raft.Voter})
	}
	err = n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("cluster: bootstrap: %w", err)
	}
	n.log.Info("bootstrapped new cluster", "servers", len(servers))
	return nil
}

// HandOff transfers leadership to another voter if this node leads, so a
// planned shutdown costs the cluster a quick handover instead of an
// election timeout. It gives up (harmlessly) when ctx ends.
func (n *Node) HandOff(ctx context.Context) {
	if n.raft == nil || n.raft.State() != raft.Leader || n.removed.Load() {
		return
	}
	if cf := n.raft.GetConfiguration(); cf.Error() != nil || countVoters(cf.Configuration().Servers) < 2 {
		return // nobody to hand off to
	}
	done := make(chan error, 1)
	go func() { done <- n.raft.LeadershipTransfer().Error() }()
	select {
	case err := <-done:
		if err != nil {
			n.log.Warn("leadership hand-off before shutdown failed", LogKeyErr, err)
			return
		}
		n.log.Info("handed leadership off before shutdown")
	case <-ctx.Done():
	}
}

// Close shuts the node down without leaving the cluster: a restart from the
// same data directory resumes.
func (n *Node) Close() error {
	n.closed.Do(func() {
		close(n.stop)
		// A halted state machine blocks hashicorp/raft's apply goroutine,
		// and raft.Shutdown waits for it: let it go first.
		if n.fsm != nil {
			n.fsm.Stop()
		}
		var errs []error
		if n.raft != nil {
			errs = append(errs, n.shutdownRaft().Error())
		}
		if n.peerSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = n.peerSrv.Shutdown(ctx)
			cancel()
			_ = n.peerSrv.Close()
		}
		if n.peers != nil {
			n.peers.close()
		}
		if n.trans != nil {
			errs = append(errs, n.trans.Close())
		}
		if n.mux != nil {
			_ = n.mux.close()
		}
		n.wg.Wait()
		errs = append(errs, n.closeStores())
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// shutdownRaft shuts Raft down once and returns that shutdown's future.
func (n *Node) shutdownRaft() raft.Future {
	n.raftDownMu.Lock()
	defer n.raftDownMu.Unlock()
	if n.raftDown == nil {
		n.raftDown = n.raft.Shutdown()
	}
	return n.raftDown
}

func (n *Node) closeStores() error {
	var errs []error
	if n.logStore != nil {
		errs = append(errs, n.logStore.Close())
	}
	if n.fsm != nil {
		errs = append(errs, n.fsm.Close())
	}
	return errors.Join(errs...)
}

// ID is this node's ID.
func (n *Node) ID() string { return n.cfg.ID }

// IdempotencyWindow is Config.IdempotencyWindow: how long the store
// adapter (package store) asks for an idempotency key to be remembered.
func (n *Node) IdempotencyWindow() time.Duration { return n.cfg.IdempotencyWindow }

// FSM exposes the state machine for status, backups and tests.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Raft exposes the Raft instance for tests and membership tooling.
func (n *Node) Raft() *raft.Raft { return n.raft }

// broadcastChange wakes everything waiting for a leadership change.
func (n *Node) broadcastChange() {
	n.changedMu.Lock()
	close(n.changed)
	n.changed = make(chan struct{})
	n.changedMu.Unlock()
}

func (n *Node) changes() <-chan struct{} {
	n.changedMu.Lock()
	defer n.changedMu.Unlock()
	return n.changed
}

func countVoters(servers []raft.Server) int {
	n := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			n++
		}
	}
	return n
}

// advertisedAddr is a net.Addr for an address as configured, unresolved.
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }
