package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/agnivade/levenshtein"
	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(NewMain(os.Stdout, os.Stderr).Main(ctx, os.Args[1:]))
}

// Main is the program: ParseFlags, then Run until ctx ends.
type Main struct {
	Stdout, Stderr io.Writer
	root           *ffcli.Command
	server         *nodeFlags // the server command's flags, for tests
	// Ready, if set, is called once the program serves requests.
	Ready func()
	// complained is the command whose flags failed to parse (or asked for
	// help), so that Main prints its usage once.
	complained *ffcli.Command
}

// envHelp ends the help of every command that reads OPTOUT_* variables.
const envHelp = "Every flag can also be set through the environment: OPTOUT_<FLAG>, upper case, dashes as underscores " +
	"(--data-dir is OPTOUT_DATA_DIR). A flag on the command line wins."

// NewMain builds the command tree.
func NewMain(stdout, stderr io.Writer) *Main {
	m := &Main{Stdout: stdout, Stderr: stderr}
	m.root = &ffcli.Command{
		Name:       "optoutd",
		ShortUsage: "optoutd <server|dev|audit-verify|healthcheck|restore|recover> [flags]",
		ShortHelp:  "the opt-out store",
		LongHelp: "optoutd is a three-node Raft cluster that answers \"may I process this event for subject S and purpose P?\" " +
			"with linearizable reads. 'optoutd help COMMAND' (or 'optoutd COMMAND --help') shows a command's flags.",
		Subcommands: []*ffcli.Command{newServerCmd(m), newDevCmd(m), newAuditVerifyCmd(m), newHealthcheckCmd(m), newRestoreCmd(m), newRecoverCmd(m)},
		FlagSet:     flag.NewFlagSet("optoutd", flag.ContinueOnError),
		Exec: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				return unknownCommand(args[0], m.root.Subcommands)
			}
			return errNoCommand
		},
	}
	for _, c := range m.root.Subcommands {
		if len(c.Options) > 0 && !strings.Contains(c.LongHelp, "OPTOUT_") {
			c.LongHelp = strings.TrimSpace(c.LongHelp + " " + envHelp)
		}
	}
	m.root.Subcommands = append(m.root.Subcommands, m.helpCmd())
	for _, c := range append([]*ffcli.Command{m.root}, m.root.Subcommands...) {
		c.FlagSet.SetOutput(complaint{m: m, c: c})
	}
	return m
}

func envOptions() []ff.Option {
	return []ff.Option{ff.WithEnvVarPrefix("OPTOUT")}
}

// complaint receives what the flag package prints about a command (an
// error and the usage, or the usage for -h) and only notes the command:
// Main prints the error and the usage itself, once.
type complaint struct {
	m *Main
	c *ffcli.Command
}

func (w complaint) Write(b []byte) (int, error) {
	w.m.complained = w.c
	return len(b), nil
}

var errNoCommand = errors.New("missing command: use 'optoutd server', 'optoutd dev' or another command below")

// usageError is a command-line mistake found by Exec (an unknown command):
// Main points to the help instead of printing a failure.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// Main parses args and runs the command, printing errors and usage, and
// returns the exit status: 0 on success and for help (on stdout), 1 for a
// failed command, 2 for a usage error.
func (m *Main) Main(ctx context.Context, args []string) int {
	err := m.ParseFlags(args)
	parsed := err == nil
	if parsed {
		err = m.Run(ctx)
	}
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintln(m.Stdout, usageOf(m.complained, m.root))
		return 0
	case errors.Is(err, errNoCommand):
		fmt.Fprintf(m.Stderr, "optoutd: %v\n\n%s\n", err, usageOf(m.root, m.root))
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(m.Stderr, "optoutd: %v\nRun 'optoutd help' for the list of commands.\n", err)
		return 2
	case !parsed || m.complained != nil:
		fmt.Fprintf(m.Stderr, "optoutd: %v\n\n%s\n", err, usageOf(m.complained, m.root))
		return 2
	}
	fmt.Fprintln(m.Stderr, "optoutd:", err)
	return 1
}

func usageOf(c, fallback *ffcli.Command) string {
	if c == nil {
		c = fallback
	}
	if c.UsageFunc != nil {
		return c.UsageFunc(c)
	}
	return ffcli.DefaultUsageFunc(c)
}

// unknownCommand names the commands there are, and the closest one.
func unknownCommand(name string, cmds []*ffcli.Command) error {
	names := make([]string, 0, len(cmds))
	best, bestD, ties := "", 3, 0
	for _, c := range cmds {
		names = append(names, c.Name)
		d := levenshtein.ComputeDistance(name, c.Name)
		if len(name) >= 3 && strings.HasPrefix(c.Name, name) {
			d = min(d, 1)
		}
		switch {
		case d < bestD:
			best, bestD, ties = c.Name, d, 0
		case d == bestD:
			ties++
		}
	}
	msg := fmt.Sprintf("unknown command %q: want one of %s", name, strings.Join(names, ", "))
	if best != "" && ties == 0 {
		msg += fmt.Sprintf(" (did you mean 'optoutd %s'?)", best)
	}
	return &usageError{err: errors.New(msg)}
}

// helpCmd is "optoutd help [COMMAND]": a usage, on stdout.
func (m *Main) helpCmd() *ffcli.Command {
	return &ffcli.Command{
		Name: "help", ShortUsage: "optoutd help [COMMAND]", ShortHelp: "show the usage of optoutd or of a command",
		FlagSet: flag.NewFlagSet("optoutd help", flag.ContinueOnError),
		Exec: func(_ context.Context, args []string) error {
			c := m.root
			if len(args) > 1 {
				return &usageError{err: fmt.Errorf("help: want at most one command, got %q", args)}
			}
			if len(args) == 1 {
				c = nil
				for _, sub := range m.root.Subcommands {
					if sub.Name == args[0] {
						c = sub
					}
				}
				if c == nil {
					return unknownCommand(args[0], m.root.Subcommands)
				}
			}
			_, err := fmt.Fprintln(m.Stdout, usageOf(c, c))
			return err
		},
	}
}

// ParseFlags parses args (without the program name).
func (m *Main) ParseFlags(args []string) error {
	return m.root.Parse(args)
}

// Run runs the selected command until ctx ends.
func (m *Main) Run(ctx context.Context) error {
	return m.root.Run(ctx)
}
