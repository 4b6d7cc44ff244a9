package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Netns addresses: a private /24 that Docker's default pools do not use.
const (
	netnsBridge   = Prefix + "-br0"
	netnsSubnet   = "10.213.0"
	netnsHostIP   = netnsSubnet + ".1"
	netnsAPIPort  = 7001
	netnsRaftPort = 7101
)

// NetnsOptions configures the netns backend.
type NetnsOptions struct {
	Options
	// Binary is the optoutd executable.
	Binary string
	// DataRoot holds one data directory per node.
	DataRoot string
}

// Netns runs every node as an OS process in its own network namespace,
// each with its own address on a bridge; the harness stays in the host
// namespace on the same bridge, so partitions (nftables rules inside node
// namespaces) cut only node-to-node traffic.
type Netns struct {
	opts  NetnsOptions
	r     runner
	nodes []Node

	mu     sync.Mutex
	procs  map[string]*proc
	drops  map[string][]string // sink -> sources currently dropped
	joined map[string][]string // nodes re-added with --join
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// CheckNetns reports, as a SkipError, what the netns backend lacks here.
func CheckNetns() error {
	if os.Geteuid() != 0 {
		return &SkipError{Reason: "the netns backend needs root (network namespaces, veth, bridge, nftables, iptables): run as root, e.g. sudo -E go run ./jepsen/cmd/optout-jepsen"}
	}
	return need("ip", "nft", "iptables")
}

// NewNetns checks the requirements and returns the backend.
func NewNetns(opts NetnsOptions) (*Netns, error) {
	if err := CheckNetns(); err != nil {
		return nil, err
	}
	if opts.Nodes < 1 || opts.Nodes > 200 {
		return nil, fmt.Errorf("db: %d nodes is outside 1..200", opts.Nodes)
	}
	n := &Netns{opts: opts, r: runner{log: opts.Log}, procs: map[string]*proc{}, drops: map[string][]string{}, joined: map[string][]string{}}
	for i := range opts.Nodes {
		ip := fmt.Sprintf("%s.%d", netnsSubnet, 11+i)
		n.nodes = append(n.nodes, Node{ID: nodeID(i), IP: ip,
			API: fmt.Sprintf("%s:%d", ip, netnsAPIPort), Raft: fmt.Sprintf("%s:%d", ip, netnsRaftPort)})
	}
	return n, nil
}

func (n *Netns) Name() string  { return "netns" }
func (n *Netns) Nodes() []Node { return n.nodes }

func nsName(id string) string   { return Prefix + "-" + id }
func vethHost(id string) string { return Prefix + "-" + id + "-h" }
func vethNode(id string) string { return Prefix + "-" + id + "-c" }

// Setup builds the bridge and namespaces and starts every node.
func (n *Netns) Setup(ctx context.Context) error {
	if err := CleanupNetns(ctx, n.opts.Log); err != nil {
		n.opts.Log.Warn("cleanup of leftovers reported an error; continuing", "err", err)
	}
	cmds := [][]string{
		{"ip", "link", "add", netnsBridge, "type", "bridge"},
		{"ip", "addr", "add", netnsHostIP + "/24", "dev", netnsBridge},
		{"ip", "link", "set", netnsBridge, "up"},
		// Docker sets the FORWARD policy to DROP, and with br_netfilter
		// bridged frames traverse it: let our bridge's traffic through.
		{"iptables", "-I", "FORWARD", "-i", netnsBridge, "-o", netnsBridge, "-m", "comment", "--comment", RuleComment, "-j", "ACCEPT"},
	}
	for _, nd := range n.nodes {
		ns, h, c := nsName(nd.ID), vethHost(nd.ID), vethNode(nd.ID)
		cmds = append(cmds,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", h, "type", "veth", "peer", "name", c},
			[]string{"ip", "link", "set", h, "master", netnsBridge, "up"},
			[]string{"ip", "link", "set", c, "netns", ns},
			[]string{"ip", "-n", ns, "addr", "add", nd.IP + "/24", "dev", c},
			[]string{"ip", "-n", ns, "link", "set", c, "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
		)
	}
	for _, c := range cmds {
		if _, err := n.r.run(ctx, c[0], c[1:]...); err != nil {
			return fmt.Errorf("db: netns setup: %w", err)
		}
	}
	for _, nd := range n.nodes {
		if err := os.MkdirAll(filepath.Join(n.opts.DataRoot, nd.ID), 0o700); err != nil {
			return fmt.Errorf("db: %w", err)
		}
		if err := n.Start(ctx, nd.ID); err != nil {
			return err
		}
	}
	return nil
}

func (n *Netns) node(id string) (Node, error) {
	for _, nd := range n.nodes {
		if nd.ID == id {
			return nd, nil
		}
	}
	return Node{}, fmt.Errorf("db: no node %q", id)
}

// Start runs `ip netns exec <ns> optoutd server ...`; ip execs the server,
// so the process we hold is the server itself.
func (n *Netns) Start(ctx context.Context, id string) error {
	nd, err := n.node(id)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.procs[id]; p != nil && !p.exited() {
		return nil
	}
	logf, err := os.OpenFile(filepath.Join(n.opts.LogDir, id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("db: node log: %w", err)
	}
	args := append([]string{"netns", "exec", nsName(id), n.opts.Binary},
		serverArgs(nd, nd.API, filepath.Join(n.opts.DataRoot, id), n.nodes, n.opts.ServerArgs, n.joined[id])...)
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A clean environment: the server reads OPTOUT_* variables as flags.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	// Own process group (a terminal's Ctrl-C reaches only the harness,
	// which then tears down in order); die with the harness.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(logf, "=== jepsen: starting %s at %s\n", id, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("db: start %s: %w", id, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	n.procs[id] = p
	n.opts.Log.Debug("node started", "node", id, "pid", cmd.Process.Pid)
	return nil
}

// Rejoin kills the node, empties its data directory and starts it with
// --join.
func (n *Netns) Rejoin(ctx context.Context, id string, join []string) error {
	if err := n.Kill(ctx, id); err != nil {
		return err
	}
	dir := filepath.Join(n.opts.DataRoot, id)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("db: wipe %s: %w", id, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("db: %w", err)
	}
	n.mu.Lock()
	n.joined[id] = append([]string(nil), join...)
	n.mu.Unlock()
	return n.Start(ctx, id)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (n *Netns) running(id string) (*proc, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.procs[id]
	if p == nil || p.exited() {
		return nil, fmt.Errorf("db: node %s is not running", id)
	}
	return p, nil
}

// Kill sends SIGKILL and waits for the process to be reaped.
func (n *Netns) Kill(ctx context.Context, id string) error {
	p, err := n.running(id)
	if err != nil {
		return nil //nolint:nilerr // already dead: nothing to kill
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("db: kill %s: %w", id, err)
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("db: waiting for %s to die: %w", id, ctx.Err())
	}
}

func (n *Netns) signal(id string, sig syscall.Signal) error {
	p, err := n.running(id)
	if err != nil {
		return err
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("db: %v %s: %w", sig, id, err)
	}
	return nil
}

func (n *Netns) Pause(_ context.Context, id string) error  { return n.signal(id, syscall.SIGSTOP) }
func (n *Netns) Resume(_ context.Context, id string) error { return n.signal(id, syscall.SIGCONT) }

// SetDrops installs, in each node's namespace, an nftables input rule that
// drops packets from the nodes it must not hear.
func (n *Netns) SetDrops(ctx context.Context, drops []Drop) error {
	want := map[string][]string{}
	for sink, srcs := range dropsBySink(drops) {
		for _, s := range srcs {
			nd, err := n.node(s)
			if err != nil {
				return err
			}
			want[sink] = append(want[sink], nd.IP)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, nd := range n.nodes {
		if slices.Equal(n.drops[nd.ID], want[nd.ID]) {
			continue
		}
		if _, err := n.r.runIn(ctx, nftScript(want[nd.ID]), "ip", "netns", "exec", nsName(nd.ID), "nft", "-f", "-"); err != nil {
			return fmt.Errorf("db: partition %s: %w", nd.ID, err)
		}
		n.drops[nd.ID] = want[nd.ID]
	}
	return nil
}

// Teardown kills every node and removes the namespaces, links and rules.
func (n *Netns) Teardown(ctx context.Context) error {
	for _, nd := range n.nodes {
		_ = n.Resume(ctx, nd.ID) // a stopped process still dies of SIGKILL, but be tidy
		kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = n.Kill(kctx, nd.ID)
		cancel()
	}
	return CleanupNetns(ctx, n.opts.Log)
}

func commandExists(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}
