package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/offline"
	"github.com/peterbourgon/ff/v3/ffcli"
)

const restoreUsage = "optoutd restore FILE --data-dir D --id n1 --raft-addr H:P --initial-cluster n1=H:P,n2=H:P,n3=H:P"

// newRestoreCmd seeds one node of a new cluster from a backup file made by
// 'optoutctl snapshot save'. The work is offline.SeedFromBackup's.
func newRestoreCmd(m *Main) *ffcli.Command {
	fs := flag.NewFlagSet("optoutd restore", flag.ContinueOnError)
	var f nodeFlags
	fs.StringVar(&f.id, "id", "", "the new node's ID, e.g. n1 (required)")
	fs.StringVar(&f.dataDir, "data-dir", "", "the new node's data directory; must be missing or empty (required)")
	fs.StringVar(&f.raftAddr, "raft-addr", "127.0.0.1:7101", "the new node's Raft listen address, as 'optoutd server' will be given it")
	fs.StringVar(&f.raftAdvertise, "raft-advertise", "", "the Raft address other nodes dial (default: --raft-addr)")
	fs.StringVar(&f.initialCluster, "initial-cluster", "", "id=raftaddr,... of every node of the new cluster; the same on every node (required)")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	return &ffcli.Command{
		Name:       "restore",
		ShortUsage: restoreUsage,
		ShortHelp:  "seed one node of a brand-new cluster from a backup file (run it once per node, same file)",
		LongHelp: "Verifies the whole backup, then writes into a temporary directory, renamed to --data-dir only at the end: " +
			"a Raft snapshot of the backup at its applied index and term with --initial-cluster as the configuration, " +
			"the Raft term, and the state (fsm.db). Refuses a non-empty --data-dir. Then start every node with " +
			"'optoutd server' and the same --id, --data-dir, --raft-addr and --initial-cluster.",
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, args []string) error {
			pos, err := interspersed(fs, args)
			if err != nil {
				return err
			}
			if len(pos) != 1 {
				return fmt.Errorf("usage: %s (got %d arguments)", restoreUsage, len(pos))
			}
			return runRestore(m, &f, pos[0])
		},
	}
}

func runRestore(m *Main, f *nodeFlags, file string) error {
	log, err := newLogger(m.Stderr, f.logLevel, "text")
	if err != nil {
		return err
	}
	if f.initialCluster == "" {
		return errors.New("--initial-cluster: must be set: it is the new cluster's membership")
	}
	cfg := cluster.DefaultConfig()
	cfg.ID, cfg.DataDir, cfg.RaftAddr, cfg.RaftAdvertise, cfg.Logger = f.id, f.dataDir, f.raftAddr, f.raftAdvertise, log
	if cfg.InitialCluster, err = cluster.ParseInitialCluster(f.initialCluster); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	in, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	defer in.Close()
	start := time.Now()
	hdr, err := offline.SeedFromBackup(cfg, bufio.NewReaderSize(in, 1<<20))
	if err != nil {
		return fmt.Errorf("restore %s: %w (nothing was written to %s)", file, err, cfg.DataDir)
	}
	fmt.Fprintf(m.Stdout, "restored %s into %s for node %s: applied index %d, term %d, %d records, in %.1fs\n",
		file, cfg.DataDir, cfg.ID, hdr.AppliedIndex, max(hdr.AppliedTerm, 1), hdr.Records, time.Since(start).Seconds())
	fmt.Fprintf(m.Stdout, "next: optoutd server --id %s --data-dir %s --raft-addr %s --initial-cluster %s (and your other flags)\n",
		cfg.ID, cfg.DataDir, cfg.RaftAddr, f.initialCluster)
	return nil
}

// interspersed parses flags that come after positional arguments too
// (optoutd restore FILE --data-dir D) and returns the positional ones.
func interspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	return pos, nil
}
