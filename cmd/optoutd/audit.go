package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/optoutd/optoutd/fsm"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// errAuditBroken makes the process exit non-zero after the report.
var errAuditBroken = errors.New("audit chain broken")

func newAuditVerifyCmd(m *Main) *ffcli.Command {
	fs := flag.NewFlagSet("optoutd audit-verify", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "a node's data directory, or a copy of it (required)")
	return &ffcli.Command{
		Name:       "audit-verify",
		ShortUsage: "optoutd audit-verify --data-dir D",
		ShortHelp:  "walk the audit hash chain of a (stopped or copied) node's state file, offline",
		LongHelp: "Reads D/fsm.db read-only and reports the first audit entry that fails verification. " +
			"For a running cluster use 'optoutctl audit verify', which asks a node.",
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			if *dataDir == "" {
				return errors.New("--data-dir: must be set")
			}
			path := filepath.Join(*dataDir, "fsm.db")
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("--data-dir: %w", err)
			}
			rep, err := fsm.VerifyAuditFile(path)
			if err != nil {
				return err
			}
			fmt.Fprintln(m.Stdout, rep.String())
			if !rep.OK() {
				return errAuditBroken
			}
			return nil
		},
	}
}
