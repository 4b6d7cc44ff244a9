package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/security"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Node. Build it with DefaultConfig and check it with
// Validate; the error names the field as the command-line flag calls it.
type Config struct {
	// ID is this node's Raft server ID, e.g. "n1".
	ID string
	// DataDir holds raft.db, fsm.db and snapshots/.
	DataDir string
	// RaftAddr is the address to listen on for Raft and peer RPC.
	RaftAddr string
	// RaftAdvertise is the address other nodes dial; defaults to RaftAddr.
	RaftAdvertise string
	// APIAdvertise is the client API address this node registers in the
	// cluster so others can report it. Empty means "not reachable".
	APIAdvertise string
	// InitialCluster maps node IDs to Raft addresses for the first start.
	// A node with existing state ignores it.
	InitialCluster map[string]string

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// SnapshotsRetained is how many snapshots to keep on disk.
	SnapshotsRetained int

	// RequestTimeout bounds a read or write whose client set no deadline.
	RequestTimeout time.Duration

	// FSMSyncInterval defers the fsync of fsm.db: applied entries are
	// committed without fsync and the file is fsynced this often; a file
	// that a machine crash may have torn is rebuilt from the newest
	// snapshot and the Raft log (fsm/DESIGN.md). 0 fsyncs every commit.
	FSMSyncInterval time.Duration

	// NoDefaultCatalog makes this node, if it is the first leader of a new
	// cluster, initialise it with an empty purpose catalog instead of
	// optoutd.StarterCatalog.
	NoDefaultCatalog bool
	// IdempotencyWindow is how long an idempotency key is remembered. The
	// node that receives a write puts its window into the command (the
	// leader stamps only the time), so with nodes set differently, the
	// window of the node a client wrote through applies.
	IdempotencyWindow time.Duration

	// UnsafeLocalReads serves reads from local state without a read index.
	// It exists only so the chaos suite can prove its checker catches stale
	// reads; it is never set by flags a user would meet.
	UnsafeLocalReads bool

	// TestingLogStore, if set, wraps the Raft log store that hashicorp/raft
	// writes through, so fault-injection tests can delay or fail one node's
	// log appends (see clustertest.LogGate). Never set outside tests.
	TestingLogStore func(raft.LogStore) raft.LogStore
	// TestingClock, if set, is this node's clock for the time it stamps
	// into entries as leader. Never set outside tests.
	TestingClock func() time.Time

	// PeerTLS, if set, secures Raft and the peer RPC with mutual TLS: each
	// connection is a TLS session (the protocol byte travels inside it).
	PeerTLS *security.Reloader
	// BootstrapTokenSHA256, if set, is the hash of a token that this node,
	// if it is the leader that initialises a new cluster, registers as the
	// admin principal "bootstrap". It has no effect on a running cluster.
	BootstrapTokenSHA256 []byte

	Logger  *slog.Logger
	Network Network
	// Metrics, if set, receives this node's Prometheus collectors.
	Metrics prometheus.Registerer
}

// DefaultConfig returns timings suited to a LAN.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      2 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       10240,
		SnapshotsRetained:  2,
		RequestTimeout:     5 * time.Second,
		FSMSyncInterval:    time.Second,
		IdempotencyWindow:  optoutd.DefaultIdempotencyWindow,
		Network:            TCPNetwork{},
	}
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Validate reports the first bad field, naming its flag.
// maxLogCount bounds --snapshot-threshold and --trailing-logs: a billion
// entries is far past any useful setting (the log would hold hundreds of GB)
// and catches a mistyped or overflowed value.
const maxLogCount = 1e9

func (c *Config) Validate() error {
	if !idRE.MatchString(c.ID) {
		return fmt.Errorf("--id: %q must match %s", c.ID, idRE)
	}
	if c.DataDir == "" {
		return errors.New("--data-dir: must be set")
	}
	if err := checkHostPort("--raft-addr", c.RaftAddr); err != nil {
		return err
	}
	if c.RaftAdvertise != "" {
		if err := checkHostPort("--raft-advertise", c.RaftAdvertise); err != nil {
			return err
		}
	}
	if c.APIAdvertise != "" {
		if err := checkHostPort("--api-advertise", c.APIAdvertise); err != nil {
			return err
		}
	}
	if err := c.validateInitialCluster(); err != nil {
		return err
	}
	if err := c.validateTimings(); err != nil {
		return err
	}
	if c.Network == nil {
		c.Network = TCPNetwork{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func (c *Config) validateInitialCluster() error {
	if len(c.InitialCluster) == 0 {
		return nil
	}
	addr, ok := c.InitialCluster[c.ID]
	if !ok {
		return fmt.Errorf("--initial-cluster: does not name this node's --id %q", c.ID)
	}
	if addr != c.advertise() {
		return fmt.Errorf("--initial-cluster: gives %s=%s but this node advertises %s (--raft-addr/--raft-advertise)", c.ID, addr, c.advertise())
	}
	seen := map[string]string{}
	for _, id := range sortedKeys(c.InitialCluster) {
		a := c.InitialCluster[id]
		if !idRE.MatchString(id) {
			return fmt.Errorf("--initial-cluster: node id %q must match %s", id, idRE)
		}
		if err := checkHostPort("--initial-cluster", a); err != nil {
			return err
		}
		if other, dup := seen[a]; dup {
			return fmt.Errorf("--initial-cluster: %s and %s share the address %s", other, id, a)
		}
		seen[a] = id
	}
	return nil
}

func (c *Config) validateTimings() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--heartbeat-timeout", c.HeartbeatTimeout},
		{"--election-timeout", c.ElectionTimeout},
		{"--leader-lease-timeout", c.LeaderLeaseTimeout},
		{"--commit-timeout", c.CommitTimeout},
		{"--snapshot-interval", c.SnapshotInterval},
		{"--request-timeout", c.RequestTimeout},
	} {
		if d.v < time.Millisecond || d.v > time.Hour {
			return fmt.Errorf("%s: %v is outside 1ms..1h", d.flag, d.v)
		}
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return fmt.Errorf("--leader-lease-timeout: %v must not exceed --heartbeat-timeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		return fmt.Errorf("--election-timeout: %v must be at least --heartbeat-timeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.IdempotencyWindow < time.Second || c.IdempotencyWindow > 366*24*time.Hour {
		return fmt.Errorf("--idempotency-window: %v is outside 1s..366 days", c.IdempotencyWindow)
	}
	if c.SnapshotThreshold < 1 || c.SnapshotThreshold > maxLogCount {
		return fmt.Errorf("--snapshot-threshold: %d is outside 1..%d", c.SnapshotThreshold, uint64(maxLogCount))
	}
	if c.TrailingLogs > maxLogCount {
		return fmt.Errorf("--trailing-logs: %d is over %d", c.TrailingLogs, uint64(maxLogCount))
	}
	if c.FSMSyncInterval != 0 && (c.FSMSyncInterval < 10*time.Millisecond || c.FSMSyncInterval > time.Minute) {
		return fmt.Errorf("--fsm-sync-interval: %v is outside 10ms..1m (or 0: fsync every commit)", c.FSMSyncInterval)
	}
	if c.SnapshotsRetained < 1 || c.SnapshotsRetained > 100 {
		return fmt.Errorf("--snapshots-retained: %d is outside 1..100", c.SnapshotsRetained)
	}
	return nil
}

// RaftAdvertiseOrAddr is the Raft address other nodes dial.
func (c *Config) RaftAdvertiseOrAddr() string { return c.advertise() }

func (c *Config) advertise() string {
	if c.RaftAdvertise != "" {
		return c.RaftAdvertise
	}
	return c.RaftAddr
}

// checkHostPort accepts host:port with a port in 1..65535.
func checkHostPort(flag, s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port: %w", flag, s, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%s: %q needs a port in 1..65535", flag, s)
	}
	return nil
}

// ParseInitialCluster parses "n1=host:port,n2=host:port".
func ParseInitialCluster(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--initial-cluster: %q is not id=host:port", part)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("--initial-cluster: node id %q appears twice", id)
		}
		out[id] = addr
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// ParsePeers parses "n1=host:port,n2=host:port" for --peers.
func ParsePeers(s string) (map[string]string, error) {
	out := map[string]string{}
	seen := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--peers: %q is not id=host:port", part)
		}
		if !idRE.MatchString(id) {
			return nil, fmt.Errorf("--peers: node id %q must match %s", id, idRE)
		}
		if err := checkHostPort("--peers", addr); err != nil {
			return nil, err
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("--peers: node id %q appears twice", id)
		}
		if other, dup := seen[addr]; dup {
			return nil, fmt.Errorf("--peers: %s and %s share the address %s", other, id, addr)
		}
		out[id], seen[addr] = addr, id
	}
	return out, nil
}
