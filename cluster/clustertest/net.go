package clustertest

import (
	"context"
	"fmt"
	"net"
	"sync"
)

// Net is a loopback network whose nodes can be isolated.
type Net struct {
	mu       sync.Mutex
	byAddr   map[string]*NodeNet
	isolated map[string]bool
}

// NewNet returns an empty network.
func NewNet() *Net {
	return &Net{byAddr: map[string]*NodeNet{}, isolated: map[string]bool{}}
}

// NodeNet is one node's view of a Net; it implements cluster.Network.
type NodeNet struct {
	net   *Net
	id    string
	addr  string
	ln    net.Listener // pre-opened on first use, so the port is known early
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Node returns the network of node id, reserving a loopback port for it on
// first use.
func (n *Net) Node(id string) (*NodeNet, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, nn := range n.byAddr {
		if nn.id == id {
			return nn, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	nn := &NodeNet{net: n, id: id, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	n.byAddr[nn.addr] = nn
	return nn, nil
}

// Addr is the node's Raft address.
func (nn *NodeNet) Addr() string { return nn.addr }

// Isolate cuts node id off: its live connections close and new ones fail.
func (n *Net) Isolate(id string) {
	n.mu.Lock()
	n.isolated[id] = true
	var victim *NodeNet
	for _, nn := range n.byAddr {
		if nn.id == id {
			victim = nn
		}
	}
	n.mu.Unlock()
	if victim != nil {
		victim.closeAll()
	}
}

// Heal reconnects node id.
func (n *Net) Heal(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.isolated, id)
}

func (n *Net) cut(a, b string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.isolated[a] || n.isolated[b]
}

func (n *Net) idOf(addr string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if nn, ok := n.byAddr[addr]; ok {
		return nn.id
	}
	return ""
}

// Listen returns the reserved listener (or a new one on the same address
// after a restart).
func (nn *NodeNet) Listen(addr string) (net.Listener, error) {
	if addr != nn.addr {
		return nil, fmt.Errorf("clustertest: node %s listens on %s, not %s", nn.id, nn.addr, addr)
	}
	nn.mu.Lock()
	ln := nn.ln
	nn.ln = nil
	nn.mu.Unlock()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, err
		}
	}
	return &faultListener{Listener: ln, nn: nn}, nil
}

// DialContext dials addr unless either end is isolated.
func (nn *NodeNet) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	if nn.net.cut(nn.id, nn.net.idOf(addr)) {
		return nil, fmt.Errorf("clustertest: %s -> %s is partitioned", nn.id, addr)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return nn.track(c, nn.net.idOf(addr))
}

// track registers c so that Isolate closes it, then checks the partition
// again: an Isolate that ran between the caller's first check and the
// registration would otherwise miss c, and a connection would survive the
// partition (a deposed leader's heartbeats keep a follower from voting).
// Registering before the second check closes that window, since Isolate
// sets its flag before it closes what is registered.
func (nn *NodeNet) track(c net.Conn, peer string) (net.Conn, error) {
	tc := &trackedConn{Conn: c, nn: nn}
	nn.mu.Lock()
	nn.conns[tc] = struct{}{}
	nn.mu.Unlock()
	if nn.net.cut(nn.id, peer) {
		_ = tc.Close()
		return nil, fmt.Errorf("clustertest: %s -> %s is partitioned", nn.id, peer)
	}
	return tc, nil
}

func (nn *NodeNet) closeAll() {
	nn.mu.Lock()
	conns := nn.conns
	nn.conns = map[net.Conn]struct{}{}
	nn.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

type faultListener struct {
	net.Listener
	nn *NodeNet
}

func (l *faultListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc, err := l.nn.track(c, ""); err == nil {
			return tc, nil
		}
	}
}

type trackedConn struct {
	net.Conn
	nn   *NodeNet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.nn.mu.Lock()
		delete(c.nn.conns, c)
		c.nn.mu.Unlock()
	})
	return c.Conn.Close()
}
