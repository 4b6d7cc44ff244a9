package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/optoutd/optoutd/api"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/store"
	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// nodeFlags are the flags of one node, shared by server and (in part) dev.
type nodeFlags struct {
	id, dataDir, apiAddr, apiAdvertise      string
	raftAddr, raftAdvertise, initialCluster string
	heartbeat, election, lease, commit      time.Duration
	snapThreshold, trailingLogs             uint64
	snapInterval, requestTimeout, fsmSync   time.Duration
	snapRetained                            int
	logLevel, logFormat                     string
	unsafeStaleReads, noDefaultCatalog      bool
	idemWindow, joinTimeout                 time.Duration
	join, joinCA, joinTokenFile             string
	peerCert, peerKey, peerCA               string
	clientCert, clientKey, clientCA         string
	clientCertAuth, auth                    bool
	bootstrapTokenFile, debugAddr           string
}

func (f *nodeFlags) register(fs *flag.FlagSet) {
	d := cluster.DefaultConfig()
	fs.StringVar(&f.id, "id", "", "this node's ID, e.g. n1 (required)")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for raft.db, fsm.db and snapshots (required)")
	fs.StringVar(&f.apiAddr, "api-addr", "127.0.0.1:7001", "client API listen address (Connect, gRPC, gRPC-Web; HTTP/1.1 and h2c)")
	fs.StringVar(&f.apiAdvertise, "api-advertise", "", "client API address other nodes report for this one (default: --api-addr)")
	fs.StringVar(&f.raftAddr, "raft-addr", "127.0.0.1:7101", "Raft and peer RPC listen address")
	fs.StringVar(&f.raftAdvertise, "raft-advertise", "", "Raft address other nodes dial (default: --raft-addr)")
	fs.StringVar(&f.initialCluster, "initial-cluster", "", "id=raftaddr,... of every node, used only on the first start")
	fs.StringVar(&f.join, "join", "", "API addresses (host:port,...) of running members: on its first start this node asks to be added as a learner")
	fs.DurationVar(&f.joinTimeout, "join-timeout", time.Minute, "how long to keep trying --join before giving up")
	fs.StringVar(&f.joinCA, "join-ca-file", "", "CA bundle that verifies the members' API certificates for --join (turns on HTTPS)")
	fs.StringVar(&f.joinTokenFile, "join-token-file", "", "file holding an admin token for --join, when the members run with --auth")
	fs.DurationVar(&f.heartbeat, "heartbeat-timeout", d.HeartbeatTimeout, "Raft heartbeat timeout")
	fs.DurationVar(&f.election, "election-timeout", d.ElectionTimeout, "Raft election timeout")
	fs.DurationVar(&f.lease, "leader-lease-timeout", d.LeaderLeaseTimeout, "a leader that hears from no quorum for this long steps down")
	fs.DurationVar(&f.commit, "commit-timeout", d.CommitTimeout, "idle time before the leader sends followers the commit index")
	fs.Uint64Var(&f.snapThreshold, "snapshot-threshold", d.SnapshotThreshold, "new log entries that trigger a snapshot")
	fs.DurationVar(&f.snapInterval, "snapshot-interval", d.SnapshotInterval, "how often to check whether to snapshot")
	fs.Uint64Var(&f.trailingLogs, "trailing-logs", d.TrailingLogs, "log entries kept after a snapshot, for followers that lag")
	fs.IntVar(&f.snapRetained, "snapshots-retained", d.SnapshotsRetained, "snapshots kept on disk")
	fs.DurationVar(&f.requestTimeout, "request-timeout", d.RequestTimeout, "bound on a request whose client set no deadline")
	fs.DurationVar(&f.fsmSync, "fsm-sync-interval", d.FSMSyncInterval, "fsync fsm.db this often instead of on every applied batch; after a machine crash it is rebuilt from the newest snapshot and the Raft log (0: fsync every batch)")
	fs.BoolVar(&f.noDefaultCatalog, "no-default-catalog", false, "initialise a new cluster with an empty purpose catalog instead of the starter catalog (matters only on the first leader of a new cluster)")
	fs.DurationVar(&f.idemWindow, "idempotency-window", d.IdempotencyWindow, "how long an idempotency key is remembered (1s..366 days)")
	fs.StringVar(&f.peerCert, "peer-cert-file", "", "certificate this node presents to other nodes (mutual TLS on --raft-addr; needs --peer-key-file and --peer-ca-file)")
	fs.StringVar(&f.peerKey, "peer-key-file", "", "key of --peer-cert-file")
	fs.StringVar(&f.peerCA, "peer-ca-file", "", "CA bundle that signs every node's peer certificate")
	fs.StringVar(&f.clientCert, "client-cert-file", "", "certificate the client API serves (HTTPS; needs --client-key-file)")
	fs.StringVar(&f.clientKey, "client-key-file", "", "key of --client-cert-file")
	fs.StringVar(&f.clientCA, "client-ca-file", "", "CA bundle that verifies client certificates (optional mutual TLS)")
	fs.BoolVar(&f.clientCertAuth, "client-cert-auth", false, "require a client certificate signed by --client-ca-file on every API connection")
	fs.BoolVar(&f.auth, "auth", false, "require credentials (bearer token or a granted client certificate) on every call")
	fs.StringVar(&f.bootstrapTokenFile, "bootstrap-token-file", "", "file holding the first admin token, registered as principal \"bootstrap\" when this node initialises a new cluster")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&f.debugAddr, "debug-addr", "", "serve Go profiling endpoints (/debug/pprof/) on this host:port, without authentication; bind it to loopback (off when empty)")
	fs.BoolVar(&f.unsafeStaleReads, "unsafe-stale-reads-for-chaos-tests", false,
		"DANGER: serve reads from local state without a read index. Exists only so the chaos suite can prove it catches stale reads")
}

func (f *nodeFlags) config(log *slog.Logger) (cluster.Config, error) {
	cfg := cluster.DefaultConfig()
	cfg.ID = f.id
	cfg.DataDir = f.dataDir
	cfg.RaftAddr = f.raftAddr
	cfg.RaftAdvertise = f.raftAdvertise
	cfg.APIAdvertise = f.apiAdvertise
	if cfg.APIAdvertise == "" {
		cfg.APIAdvertise = f.apiAddr
	}
	ic, err := cluster.ParseInitialCluster(f.initialCluster)
	if err != nil {
		return cfg, err
	}
	cfg.InitialCluster = ic
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout, cfg.CommitTimeout = f.heartbeat, f.election, f.lease, f.commit
	cfg.SnapshotThreshold, cfg.SnapshotInterval, cfg.TrailingLogs = f.snapThreshold, f.snapInterval, f.trailingLogs
	cfg.SnapshotsRetained, cfg.RequestTimeout = f.snapRetained, f.requestTimeout
	cfg.FSMSyncInterval = f.fsmSync
	cfg.UnsafeLocalReads = f.unsafeStaleReads
	cfg.NoDefaultCatalog = f.noDefaultCatalog
	cfg.IdempotencyWindow = f.idemWindow
	cfg.Logger = log
	if err := checkListenAddr("--api-addr", f.apiAddr); err != nil {
		return cfg, err
	}
	if f.debugAddr != "" {
		if err := checkListenAddr("--debug-addr", f.debugAddr); err != nil {
			return cfg, err
		}
	}
	if f.join != "" && f.initialCluster != "" {
		return cfg, fmt.Errorf("--join: cannot be combined with --initial-cluster (bootstrap a new cluster, or join a running one)")
	}
	if f.joinTimeout < time.Second || f.joinTimeout > maxJoinTimeout {
		return cfg, fmt.Errorf("--join-timeout: %v is outside 1s..%v", f.joinTimeout, maxJoinTimeout)
	}
	if f.join == "" && (f.joinCA != "" || f.joinTokenFile != "") {
		return cfg, errors.New("--join-ca-file and --join-token-file: only meaningful with --join")
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if f.join == "" && f.initialCluster == "" {
		if _, err := os.Stat(filepath.Join(f.dataDir, "raft.db")); errors.Is(err, fs.ErrNotExist) {
			return cfg, errNoPeers(f.dataDir)
		}
	}
	return cfg, nil
}

// errNoPeers: a node with no state and neither way to find a cluster would
// only wait, logging "no known peers, aborting election", forever.
func errNoPeers(dataDir string) error {
	return fmt.Errorf("--initial-cluster or --join: one is needed, because --data-dir %s holds no cluster state "+
		"(without either, this node would wait for peers forever). To start a new cluster, give every node the same "+
		"--initial-cluster n1=HOST:RAFTPORT,n2=...,n3=...; to add this node to a running cluster, give --join with the "+
		"API addresses of its members (HOST:APIPORT,...)", dataDir)
}

func checkListenAddr(flagName, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s: %q is not host:port: %w", flagName, addr, err)
	}
	return nil
}

func newServerCmd(m *Main) *ffcli.Command {
	fs := flag.NewFlagSet("optoutd server", flag.ContinueOnError)
	var f nodeFlags
	f.register(fs)
	cmd := &ffcli.Command{
		Name:       "server",
		ShortUsage: "optoutd server --id n1 --data-dir D --api-addr H:P --raft-addr H:P --initial-cluster n1=H:P,n2=H:P,n3=H:P",
		ShortHelp:  "run one node",
		FlagSet:    fs,
		Options:    envOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			log, err := newLogger(m.Stderr, f.logLevel, f.logFormat)
			if err != nil {
				return err
			}
			cfg, err := f.config(log)
			if err != nil {
				return err
			}
			if cfg.UnsafeLocalReads {
				log.Warn("UNSAFE: --unsafe-stale-reads-for-chaos-tests is set; reads may be stale. Never use this outside a chaos test")
			}
			sec, err := f.secure(log)
			if err != nil {
				return err
			}
			cfg.PeerTLS, cfg.BootstrapTokenSHA256 = sec.peer, sec.bootstrapHash
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
				collectors.NewBuildInfoCollector())
			if err := bridgeRaftMetrics(reg); err != nil {
				return fmt.Errorf("metrics: %w", err)
			}
			rn, err := startNode(cfg, f.apiAddr, reg, sec)
			if err != nil {
				return err
			}
			if f.debugAddr != "" {
				dbg, err := startDebugServer(f.debugAddr, log)
				if err != nil {
					_ = rn.close()
					return err
				}
				defer dbg.close()
			}
			if rn.node.Fresh() && f.join == "" && f.initialCluster == "" {
				// raft.db exists but holds no state (a first start that
				// failed early): still nothing to join or bootstrap.
				_ = rn.close()
				return errNoPeers(cfg.DataDir)
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					log.Info("SIGHUP: reloading certificates")
					sec.reload()
				}
			}()
			log.Info("serving", "api", rn.apiAddr(), "raft", cfg.RaftAddr)
			if f.join != "" {
				if !rn.node.Fresh() {
					log.Info("existing state found; not joining again", "join", f.join)
				} else if err := join(ctx, log, f.join, cfg.ID, cfg.RaftAdvertiseOrAddr(), f.joinTimeout,
					func() bool { return rn.node.Raft().LastIndex() > 0 }, sec.join...); err != nil {
					_ = rn.close()
					return err
				}
			}
			if m.Ready != nil {
				m.Ready()
			}
			select {
			case <-ctx.Done():
			case err := <-rn.serveErr:
				_ = rn.close()
				return fmt.Errorf("api server: %w", err)
			}
			log.Info("shutting down")
			return rn.close()
		},
	}
	m.server = &f
	return cmd
}

// runningNode is a cluster node plus its API server.
type runningNode struct {
	node     *cluster.Node
	ln       net.Listener
	srv      *http.Server
	serveErr chan error
	stop     chan struct{} // closed by close: ends watchRemoved
	stopOnce sync.Once
	dataDir  string
	// stopExpiry ends the override expiry loop.
	stopExpiry context.CancelFunc
}

// removedAdvice is what a removed node says, in its readiness and its log.
func removedAdvice(id, dataDir string) string {
	return fmt.Sprintf("this node (%s) was removed from the cluster and serves nothing: stop it. To use it again, "+
		"delete its data directory (%s) and start it with --join and the API addresses of the members", id, dataDir)
}

// readiness is the node's store as the API sees it, with a removed node's
// readiness saying what to do instead of only "removed".
type readiness struct {
	*store.Store
	dataDir string
}

func (r readiness) Ready() error {
	err := r.Store.Ready()
	if errors.Is(err, cluster.ErrNodeRemoved) {
		return errors.New(removedAdvice(r.Node().ID(), r.dataDir))
	}
	return err
}

// watchRemoved logs, once, at ERROR, what to do when this node learns it
// was removed (it keeps running: a removed node still answers, so that
// clients move on to the members).
func (r *runningNode) watchRemoved(log *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			if errors.Is(r.node.Ready(), cluster.ErrNodeRemoved) {
				log.Error(removedAdvice(r.node.ID(), r.dataDir))
				return
			}
		}
	}
}

// overrideSweep is how often the leader looks for overrides due to expire;
// until their expiry entry applies, nodes already refuse to honour them by
// their own clocks.
const overrideSweep = 500 * time.Millisecond

// startNode listens on apiAddr first (so a busy port fails before Raft
// starts), then opens the node and serves the API.
func startNode(cfg cluster.Config, apiAddr string, reg *prometheus.Registry, sec *secured) (*runningNode, error) {
	if sec == nil {
		sec = &secured{}
	}
	ln, err := net.Listen("tcp", apiAddr)
	if err != nil {
		return nil, fmt.Errorf("--api-addr: %w", err)
	}
	cfg.Metrics = reg
	node, err := cluster.Open(cfg)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	st := store.New(node)
	h := api.NewHandler(readiness{Store: st, dataDir: cfg.DataDir}, api.Options{Logger: cfg.Logger, Gatherer: reg, Registerer: reg, Members: node, Backups: st,
		Principals: st, RequireAuth: sec.requireAuth, NodeID: cfg.ID})
	rn := &runningNode{node: node, ln: ln, srv: api.NewServer(apiAddr, h), serveErr: make(chan error, 1), stop: make(chan struct{}), dataDir: cfg.DataDir}
	if cfg.Logger != nil {
		go rn.watchRemoved(cfg.Logger, time.Second)
	}
	var expiry context.Context
	expiry, rn.stopExpiry = context.WithCancel(context.Background())
	go st.ExpireOverrides(expiry, overrideSweep, cfg.Logger)
	rn.srv.TLSConfig = sec.apiTLS
	go func() {
		err := api.Serve(rn.srv, ln) // over TLS when TLSConfig is set
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			rn.serveErr <- err
		}
	}()
	return rn, nil
}

func (r *runningNode) apiAddr() string { return r.ln.Addr().String() }

// close hands leadership off if this node leads, stops taking requests
// (waiting up to 2s in all for those in flight), then shuts the node down
// without leaving the cluster.
func (r *runningNode) close() error {
	r.stopOnce.Do(func() { close(r.stop) })
	r.stopExpiry()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.node.HandOff(ctx)
	_ = r.srv.Shutdown(ctx)
	return r.node.Close()
}
