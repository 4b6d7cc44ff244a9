package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/cluster"
)

// Cluster is a set of in-process nodes on one Net.
type Cluster struct {
	t    testing.TB
	Net  *Net
	mu   sync.Mutex
	cfgs map[string]cluster.Config
	live map[string]*cluster.Node
}

// Option edits every node's config before start.
type Option func(*cluster.Config)

// TestConfig is cluster.DefaultConfig with timings that tolerate a loaded
// two-core machine running the race detector.
func TestConfig() cluster.Config {
	c := cluster.DefaultConfig()
	c.HeartbeatTimeout = 400 * time.Millisecond
	c.ElectionTimeout = 400 * time.Millisecond
	c.LeaderLeaseTimeout = 200 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.RequestTimeout = 10 * time.Second
	return c
}

// New starts n nodes (n1..nN) bootstrapped as one cluster and stops them
// when the test ends.
func New(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Net: NewNet(), cfgs: map[string]cluster.Config{}, live: map[string]*cluster.Node{}}
	initial := map[string]string{}
	var ids []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		nn, err := c.Net.Node(id)
		if err != nil {
			t.Fatal(err)
		}
		initial[id] = nn.Addr()
		ids = append(ids, id)
	}
	root := t.TempDir()
	for _, id := range ids {
		nn, _ := c.Net.Node(id)
		cfg := TestConfig()
		cfg.ID = id
		cfg.DataDir = filepath.Join(root, id)
		cfg.RaftAddr = nn.Addr()
		cfg.APIAdvertise = "127.0.0.1:1" // tests talk to nodes directly
		cfg.InitialCluster = initial
		cfg.Network = nn
		cfg.Logger = Logger(t, id)
		for _, o := range opts {
			o(&cfg)
		}
		c.cfgs[id] = cfg
	}
	for _, id := range ids {
		c.Start(id)
	}
	t.Cleanup(c.StopAll)
	return c
}

// Logger writes to the test log when OPTOUT_TEST_LOG=1, else nowhere.
func Logger(t testing.TB, id string) *slog.Logger {
	if os.Getenv("OPTOUT_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// Add prepares node id outside the initial cluster (it bootstraps nothing
// and waits to be added with Node.AddMember), starts it and returns it with
// its Raft address.
func (c *Cluster) Add(id string, opts ...Option) (*cluster.Node, string) {
	c.t.Helper()
	nn, err := c.Net.Node(id)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	var root string
	for _, cfg := range c.cfgs {
		root = filepath.Dir(cfg.DataDir)
		break
	}
	cfg := TestConfig()
	cfg.ID = id
	cfg.DataDir = filepath.Join(root, id)
	cfg.RaftAddr = nn.Addr()
	cfg.APIAdvertise = "127.0.0.1:1"
	cfg.Network = nn
	cfg.Logger = Logger(c.t, id)
	for _, o := range opts {
		o(&cfg)
	}
	c.cfgs[id] = cfg
	c.mu.Unlock()
	return c.Start(id), nn.Addr()
}

// Configure edits node id's config for its next Start.
func (c *Cluster) Configure(id string, o Option) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.cfgs[id]
	o(&cfg)
	c.cfgs[id] = cfg
}

// RaftAddr is node id's Raft address.
func (c *Cluster) RaftAddr(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfgs[id].RaftAddr
}

// Wipe deletes node id's data directory (the node must be stopped).
func (c *Cluster) Wipe(id string) {
	c.t.Helper()
	c.mu.Lock()
	dir := c.cfgs[id].DataDir
	c.mu.Unlock()
	if err := os.RemoveAll(dir); err != nil {
		c.t.Fatal(err)
	}
}

// DataDir is node id's data directory.
func (c *Cluster) DataDir(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfgs[id].DataDir
}

// Start (re)starts node id from its data directory.
func (c *Cluster) Start(id string) *cluster.Node {
	c.t.Helper()
	c.mu.Lock()
	cfg := c.cfgs[id]
	c.mu.Unlock()
	n, err := cluster.Open(cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	c.mu.Lock()
	c.live[id] = n
	c.mu.Unlock()
	return n
}

// Stop shuts node id down, keeping its data.
func (c *Cluster) Stop(id string) {
	c.mu.Lock()
	n := c.live[id]
	delete(c.live, id)
	c.mu.Unlock()
	if n != nil {
		if err := n.Close(); err != nil {
			c.t.Logf("close %s: %v", id, err)
		}
	}
}

// StopAll stops every live node.
func (c *Cluster) StopAll() {
	for _, id := range c.IDs() {
		c.Stop(id)
	}
}

// Node returns live node id, or nil.
func (c *Cluster) Node(id string) *cluster.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live[id]
}

// IDs lists the live nodes in order.
func (c *Cluster) IDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.live {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Nodes lists the live nodes in ID order.
func (c *Cluster) Nodes() []*cluster.Node {
	var out []*cluster.Node
	for _, id := range c.IDs() {
		out = append(out, c.Node(id))
	}
	return out
}

// WaitLeader polls until one live, non-isolated node is leader and every
// other live node agrees, or fails the test after timeout.
func (c *Cluster) WaitLeader(timeout time.Duration, exclude ...string) *cluster.Node {
	c.t.Helper()
	var leader *cluster.Node
	Eventually(c.t, timeout, func() error {
		leader = nil
		for _, n := range c.Nodes() {
			if slices.Contains(exclude, n.ID()) {
				continue
			}
			if n.Raft().State() == raft.Leader {
				leader = n
			}
		}
		if leader == nil {
			return fmt.Errorf("no leader among %v (excluding %v)", c.IDs(), exclude)
		}
		return leader.Ready()
	})
	return leader
}

// Followers returns the live nodes other than leader.
func (c *Cluster) Followers(leader *cluster.Node) []*cluster.Node {
	var out []*cluster.Node
	for _, n := range c.Nodes() {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// Eventually polls fn until it returns nil or timeout passes, then fails
// the test with fn's last error. It never sleeps longer than 20ms at a time.
func Eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ctx returns a context that ends after d or with the test.
func Ctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
