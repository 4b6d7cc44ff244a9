package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/offline"
	"github.com/peterbourgon/ff/v3/ffcli"
)

const recoverUsage = "optoutd recover --data-dir D --id n1 --peers n1=H:P[,n2=H:P...]"

// newRecoverCmd rewrites a stopped node's Raft configuration for a cluster
// that lost its quorum for good. The work is offline.RecoverCluster's; see
// docs/operations.md, "Disaster recovery (lost quorum)".
func newRecoverCmd(m *Main) *ffcli.Command {
	fs := flag.NewFlagSet("optoutd recover", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "the stopped survivor's data directory (required)")
	id := fs.String("id", "", "this node's ID; if set, --peers must name it")
	peers := fs.String("peers", "", "id=raftaddr,... of the surviving nodes that form the new cluster; the same on every survivor (required)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	return &ffcli.Command{
		Name:       "recover",
		ShortUsage: recoverUsage,
		ShortHelp:  "offline: make the survivors of a cluster that lost its quorum a smaller cluster (stop them all first)",
		LongHelp: "Runs hashicorp/raft's RecoverCluster on a stopped node: replays its log into the state, writes a snapshot whose " +
			"configuration is --peers, and clears the log. Run it on every survivor with the same --peers, then start them. " +
			"Entries only the lost nodes had are lost; entries only the survivors had, even unacknowledged ones, become committed.",
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			log, err := newLogger(m.Stderr, *logLevel, "text")
			if err != nil {
				return err
			}
			if *dataDir == "" {
				return errors.New("--data-dir: must be set")
			}
			if strings.TrimSpace(*peers) == "" {
				return errors.New("--peers: must be set")
			}
			p, err := cluster.ParsePeers(*peers)
			if err != nil {
				return err
			}
			start := time.Now()
			meta, err := offline.RecoverCluster(offline.RecoverConfig{DataDir: *dataDir, ID: *id, Peers: p, Logger: log})
			if err != nil {
				return err
			}
			var names []string
			for _, s := range meta.Configuration.Servers {
				names = append(names, fmt.Sprintf("%s=%s", s.ID, s.Address))
			}
			fmt.Fprintf(m.Stdout, "recovered %s in %.1fs: configuration %s, snapshot at index %d, term %d; start the node now\n",
				*dataDir, time.Since(start).Seconds(), strings.Join(names, ","), meta.Index, meta.Term)
			return nil
		},
	}
}
