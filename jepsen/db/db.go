package db

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"time"
)

// Prefix starts the name of every namespace, link, container, network,
// volume, firewall rule comment and temporary directory this package
// creates, so that a later run can find and remove leftovers of a crashed
// one.
const Prefix = "ojp"

// RuleComment tags the iptables rules the netns backend adds.
const RuleComment = Prefix + "-jepsen"

// Node is one member of a running cluster as the harness sees it.
type Node struct {
	ID   string
	IP   string
	API  string // host:port the clients dial (from the host namespace)
	Raft string // host:port the peers dial
}

// Drop cuts packets from From to To (node IDs). A partition between A and
// B is the two drops A→B and B→A; a one-way partition is one of them.
type Drop struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Options configures a backend.
type Options struct {
	// Nodes is the cluster size.
	Nodes int
	// ServerArgs are extra flags for every `optoutd server`.
	ServerArgs []string
	// LogDir receives one log file per node.
	LogDir string
	// Log is the harness logger.
	Log *slog.Logger
}

// Backend runs a cluster of optoutd servers and injects faults into it.
// Every method is safe to call from several goroutines.
type Backend interface {
	Name() string
	// Setup removes leftovers of earlier runs, creates the network and
	// starts every node.
	Setup(ctx context.Context) error
	Nodes() []Node
	// Start restarts a node that was killed (same data directory).
	Start(ctx context.Context, id string) error
	// Kill sends SIGKILL and waits until the node is gone.
	Kill(ctx context.Context, id string) error
	// Pause sends SIGSTOP; Resume sends SIGCONT.
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	// Rejoin kills a node, wipes its data and starts it again with --join
	// naming the API addresses in join, so it asks the cluster to add it
	// back (after it was removed from the configuration).
	Rejoin(ctx context.Context, id string, join []string) error
	// SetDrops replaces the current partition with drops (nil heals).
	SetDrops(ctx context.Context, drops []Drop) error
	// Teardown stops every node and removes everything Setup created.
	Teardown(ctx context.Context) error
}

// ErrSkip says the backend cannot run here; the message says what is
// needed. Callers report it and exit successfully.
var ErrSkip = errors.New("db: backend unavailable here")

// SkipError wraps ErrSkip with what is missing.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "SKIP: " + e.Reason }
func (e *SkipError) Unwrap() error { return ErrSkip }

// nodeID names node i (0-based).
func nodeID(i int) string { return fmt.Sprintf("n%d", i+1) }

// initialCluster is the --initial-cluster value for nodes.
func initialCluster(nodes []Node) string {
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		parts[i] = n.ID + "=" + n.Raft
	}
	return strings.Join(parts, ",")
}

// serverArgs are the flags of one node. A node that was wiped and re-added
// (join non-empty) starts with --join instead of --initial-cluster.
func serverArgs(n Node, apiListen, dataDir string, nodes []Node, extra, join []string) []string {
	args := []string{"server",
		"--id", n.ID,
		"--data-dir", dataDir,
		"--api-addr", apiListen,
		"--api-advertise", n.API,
		"--raft-addr", n.Raft,
		"--log-format", "text",
	}
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	} else {
		args = append(args, "--initial-cluster", initialCluster(nodes))
	}
	return append(args, extra...)
}

// dropsBySink groups drops by the node that must drop the packets.
func dropsBySink(drops []Drop) map[string][]string {
	out := map[string][]string{}
	for _, d := range drops {
		out[d.To] = append(out[d.To], d.From)
	}
	return out
}

// nftScript replaces this package's table with one that drops every packet
// from the given addresses (an empty list only removes the table).
func nftScript(fromIPs []string) string {
	var b strings.Builder
	// "add" makes the delete succeed whether or not the table exists.
	b.WriteString("add table inet " + Prefix + "\ndelete table inet " + Prefix + "\n")
	if len(fromIPs) == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "table inet %s {\n  chain input {\n    type filter hook input priority 0; policy accept;\n", Prefix)
	fmt.Fprintf(&b, "    ip saddr { %s } drop\n  }\n}\n", strings.Join(fromIPs, ", "))
	return b.String()
}

// runner runs external commands, logging them.
type runner struct{ log *slog.Logger }

func (r runner) run(ctx context.Context, name string, args ...string) (string, error) {
	return r.runIn(ctx, "", name, args...)
}

func (r runner) runIn(ctx context.Context, stdin, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r.log.Debug("exec", "cmd", name+" "+strings.Join(args, " "), "err", err)
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// need reports the first missing command as a SkipError.
func need(cmds ...string) error {
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			return &SkipError{Reason: fmt.Sprintf("command %q not found (install it: apt-get install -y %s)", c, debPackage(c))}
		}
	}
	return nil
}

func debPackage(cmd string) string {
	switch cmd {
	case "nft":
		return "nftables"
	case "ip":
		return "iproute2"
	case "nsenter":
		return "util-linux"
	case "docker":
		return "docker.io"
	}
	return cmd
}
