package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/optoutd/optoutd/cluster"
	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"
)

const devNodes = 3

func newDevCmd(m *Main) *ffcli.Command {
	fs := flag.NewFlagSet("optoutd dev", flag.ContinueOnError)
	var (
		dataDir   = fs.String("data-dir", "", "keep data here (n1/, n2/, n3/) instead of a temporary directory that is removed on exit")
		host      = fs.String("host", "127.0.0.1", "address every node listens on")
		apiPort   = fs.Int("api-port", 7001, "API port of n1; n2 and n3 use the next two")
		raftPort  = fs.Int("raft-port", 7101, "Raft port of n1; n2 and n3 use the next two")
		logLevel  = fs.String("log-level", "warn", "debug, info, warn or error")
		logFormat = fs.String("log-format", "text", "text or json")
		noCatalog = fs.Bool("no-default-catalog", false, "start with an empty purpose catalog instead of the starter catalog")
	)
	return &ffcli.Command{
		Name:       "dev",
		ShortUsage: "optoutd dev [--data-dir D]",
		ShortHelp:  "run a real three-node cluster in this process, for development",
		LongHelp: "Starts three nodes (n1, n2, n3) in one process, each with its own data directory and ports, " +
			"talking Raft over real TCP. APIs on 127.0.0.1:7001-7003 by default. Ctrl-C stops it.",
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			for _, p := range []struct {
				flag string
				v    int
			}{{"--api-port", *apiPort}, {"--raft-port", *raftPort}} {
				if p.v < 1 || p.v+devNodes-1 > 65535 {
					return fmt.Errorf("%s: %d leaves no room for %d ports below 65536", p.flag, p.v, devNodes)
				}
			}
			log, err := newLogger(m.Stderr, *logLevel, *logFormat)
			if err != nil {
				return err
			}
			log.Warn("optoutd dev runs without TLS or authentication: for development only")
			dir := *dataDir
			if dir == "" {
				if dir, err = os.MkdirTemp("", "optoutd-dev-"); err != nil {
					return err
				}
				defer func() { _ = os.RemoveAll(dir) }()
			}
			initial := map[string]string{}
			for i := 0; i < devNodes; i++ {
				initial[fmt.Sprintf("n%d", i+1)] = net.JoinHostPort(*host, strconv.Itoa(*raftPort+i))
			}
			var nodes []*runningNode
			defer func() {
				for _, n := range nodes {
					_ = n.close()
				}
			}()
			for i := 0; i < devNodes; i++ {
				id := fmt.Sprintf("n%d", i+1)
				cfg := cluster.DefaultConfig()
				cfg.ID = id
				cfg.DataDir = filepath.Join(dir, id)
				cfg.RaftAddr = initial[id]
				cfg.APIAdvertise = net.JoinHostPort(*host, strconv.Itoa(*apiPort+i))
				cfg.InitialCluster = initial
				cfg.NoDefaultCatalog = *noCatalog
				cfg.Logger = log
				rn, err := startNode(cfg, cfg.APIAdvertise, prometheus.NewRegistry(), nil)
				if err != nil {
					return fmt.Errorf("%s: %w", id, err)
				}
				nodes = append(nodes, rn)
			}
			if err := waitReady(ctx, nodes, 30*time.Second); err != nil {
				return err
			}
			printReady(m, dir, *dataDir == "", nodes)
			if m.Ready != nil {
				m.Ready()
			}
			<-ctx.Done()
			fmt.Fprintln(m.Stdout, "optoutd dev: stopping")
			return nil
		},
	}
}

// waitReady polls until every node knows the leader and is caught up.
func waitReady(ctx context.Context, nodes []*runningNode, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var notReady error
		for _, n := range nodes {
			if err := n.node.Ready(); err != nil {
				notReady = fmt.Errorf("%s: %w", n.node.ID(), err)
				break
			}
		}
		if notReady == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return errors.Join(errors.New("cluster did not become ready"), notReady)
		case <-tick.C:
		}
	}
}

func printReady(m *Main, dir string, temp bool, nodes []*runningNode) {
	where := dir
	if temp {
		where += " (temporary, removed on exit)"
	}
	fmt.Fprintf(m.Stdout, "optoutd dev: %d-node cluster ready; data in %s\n", len(nodes), where)
	for _, n := range nodes {
		id, _ := n.node.Leader()
		role := "follower"
		if id == n.node.ID() {
			role = "leader"
		}
		fmt.Fprintf(m.Stdout, "  %s  api http://%s  (%s)\n", n.node.ID(), n.apiAddr(), role)
	}
	a := nodes[0].apiAddr()
	fmt.Fprintf(m.Stdout, `Try:
  curl -s http://%[1]s/optout.v1.OptOutService/Set -H 'Content-Type: application/json' \
    -d '{"subjectId":"u1","purpose":"email_marketing","state":"STATE_OPTED_OUT","source":"web-form","reason":"unsubscribe link"}'
  curl -s http://%[1]s/optout.v1.OptOutService/Check -H 'Content-Type: application/json' \
    -d '{"subjectId":"u1","purpose":"email_marketing"}'
Ctrl-C stops the cluster.
`, a)
}
