package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain(os.Stdout, os.Stderr)
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "optoutd:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "optoutd:", err)
		os.Exit(1)
	}
}

// Main is the program: ParseFlags, then Run until ctx ends.
type Main struct {
	Stdout, Stderr io.Writer
	root           *ffcli.Command
	server         *nodeFlags // the server command's flags, for tests
	// Ready, if set, is called once the program serves requests.
	Ready func()
}

// NewMain builds the command tree.
func NewMain(stdout, stderr io.Writer) *Main {
	m := &Main{Stdout: stdout, Stderr: stderr}
	srv := newServerCmd(m)
	dev := newDevCmd(m)
	av := newAuditVerifyCmd(m)
	m.root = &ffcli.Command{
		Name:        "optoutd",
		ShortUsage:  "optoutd <server|dev|audit-verify> [flags]",
		ShortHelp:   "the opt-out store",
		LongHelp:    "optoutd is a three-node Raft cluster that answers \"may I process this event for subject S and purpose P?\" with linearizable reads.",
		Subcommands: []*ffcli.Command{srv, dev, av, newHealthcheckCmd(m), newRestoreCmd(m), newRecoverCmd(m)},
		FlagSet:     flag.NewFlagSet("optoutd", flag.ContinueOnError),
		Exec: func(context.Context, []string) error {
			return errors.New("missing command: use 'optoutd server', 'optoutd dev' or 'optoutd audit-verify' (see -h)")
		},
	}
	for _, c := range m.root.Subcommands {
		c.FlagSet.SetOutput(stderr)
	}
	m.root.FlagSet.SetOutput(stderr)
	return m
}

func envOptions() []ff.Option {
	return []ff.Option{ff.WithEnvVarPrefix("OPTOUT")}
}

// ParseFlags parses args (without the program name).
func (m *Main) ParseFlags(args []string) error {
	return m.root.Parse(args)
}

// Run runs the selected command until ctx ends.
func (m *Main) Run(ctx context.Context) error {
	return m.root.Run(ctx)
}
