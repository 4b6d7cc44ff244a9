package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/agnivade/levenshtein"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/proto"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(NewMain(os.Stdout, os.Stderr).Main(ctx, os.Args[1:]))
}

// Main is the program, split so tests run it in-process.
type Main struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader // what "report --file -" reads; nil: os.Stdin
	root           *ffcli.Command
	endpoints      string
	timeout        time.Duration
	caCert, cert   string
	key, token     string
	output         string
	// complained is the command whose flags failed to parse (or asked for
	// help), so that Main prints its usage once.
	complained *ffcli.Command
}

// defaultEndpoints are `optoutd dev`'s API ports, so the README's examples
// need no flag.
const defaultEndpoints = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

// NewMain builds the command tree.
func NewMain(stdout, stderr io.Writer) *Main {
	m := &Main{Stdout: stdout, Stderr: stderr}
	m.root = &ffcli.Command{
		Name:       "optoutctl",
		ShortUsage: "optoutctl <command> [flags] [args]",
		LongHelp: "The command-line client of an optoutd cluster. The global flags below go before or after the " +
			"command. Each global flag can also be set through OPTOUT_<FLAG>, e.g. OPTOUT_ENDPOINTS; a command's own flags are given on the command line. " +
			"'optoutctl help COMMAND' shows a command's usage and flags.",
		FlagSet: flag.NewFlagSet("optoutctl", flag.ContinueOnError),
		Options: []ff.Option{ff.WithEnvVarPrefix("OPTOUT")},
		Subcommands: []*ffcli.Command{
			m.setCmd(), m.checkCmd(), m.getCmd(), m.statusCmd(),
			m.eraseCmd(), m.purposeCmd(), m.historyCmd(), m.stateAtCmd(), m.auditCmd(), m.watchCmd(), m.adminCmd(), m.membersCmd(),
			m.tlsCmd(), m.tokenCmd(), m.certCmd(),
			m.snapshotCmd(), m.importCmd(), m.exportCmd(),
			m.receiptCmd(), m.fenceCmd(), m.overrideCmd(), m.reportCmd(), m.violationsCmd(),
		},
		Exec: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				return &usageError{err: unknownCommand("optoutctl", args[0], m.root.Subcommands), brief: true}
			}
			return errNoCommand
		},
	}
	m.root.Subcommands = append(m.root.Subcommands, m.helpCmd())
	m.setup(m.root)
	return m
}

// setup gives every command of the tree the global flags (so they work
// after the command too: optoutctl check u1 p --timeout 1s) and routes the
// flag package's own messages to Main, which prints a usage once.
func (m *Main) setup(c *ffcli.Command) {
	fs := c.FlagSet
	fs.StringVar(&m.endpoints, "endpoints", defaultEndpoints, "comma-separated API addresses, tried in turn (OPTOUT_ENDPOINTS)")
	fs.DurationVar(&m.timeout, "timeout", 5*time.Second, "deadline of each command")
	fs.StringVar(&m.output, "output", "", "pretty (indented JSON; the default), json (one compact object per line; the default of watch) or table")
	fs.StringVar(&m.output, "o", "", "short for --output")
	fs.StringVar(&m.caCert, "cacert", "", "CA bundle that verifies the API's certificate (turns on HTTPS)")
	fs.StringVar(&m.cert, "cert", "", "client certificate to present (needs --key)")
	fs.StringVar(&m.key, "key", "", "key of --cert")
	fs.StringVar(&m.token, "token", "", "bearer token (prefer OPTOUT_TOKEN, so it stays out of shell history)")
	fs.SetOutput(complaint{m: m, c: c})
	for _, sub := range c.Subcommands {
		m.setup(sub)
	}
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

var errNoCommand = errors.New("no command given")

// Main parses args and runs the command, printing errors and usage, and
// returns the exit status: 0 on success and for help (on stdout), 1 for a
// failed command, 2 for a usage error.
func (m *Main) Main(ctx context.Context, args []string) int {
	err := m.ParseFlags(args)
	if err == nil {
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
		fmt.Fprintln(m.Stderr, usageOf(m.root, m.root))
		return 2
	case errors.As(err, &ue) && ue.brief:
		fmt.Fprintf(m.Stderr, "optoutctl: %v\nRun 'optoutctl help' for the list of commands.\n", err)
		return 2
	case ue != nil || m.complained != nil:
		c := m.complained
		if ue != nil && ue.c != nil {
			c = ue.c
		}
		fmt.Fprintf(m.Stderr, "optoutctl: %v\n\n%s\n", err, usageOf(c, m.root))
		return 2
	}
	fmt.Fprintln(m.Stderr, "optoutctl:", describe(err))
	return 1
}

// usageError is a command-line mistake that a command found itself (the
// wrong number of arguments, an unknown subcommand): Main prints the usage
// after it and exits 2.
type usageError struct {
	err   error
	c     *ffcli.Command // whose usage to print; nil: the one that complained
	brief bool           // point to help instead of printing a usage
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

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
func unknownCommand(parent, name string, cmds []*ffcli.Command) error {
	names := make([]string, 0, len(cmds))
	for _, c := range cmds {
		names = append(names, c.Name)
	}
	msg := fmt.Sprintf("unknown command %q: want one of %s", name, strings.Join(names, ", "))
	if s := closest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean '%s %s'?)", parent, s)
	}
	return errors.New(msg)
}

// closest returns the one name within two edits of s, or that starts with
// s (three letters at least); "" when there is none or a tie.
func closest(s string, names []string) string {
	best, bestD, ties := "", 3, 0
	for _, n := range names {
		d := levenshtein.ComputeDistance(s, n)
		if len(s) >= 3 && strings.HasPrefix(n, s) {
			d = min(d, 1)
		}
		switch {
		case d < bestD:
			best, bestD, ties = n, d, 0
		case d == bestD:
			ties++
		}
	}
	if ties > 0 {
		return ""
	}
	return best
}

// helpCmd is "optoutctl help [COMMAND [SUBCOMMAND]]": a usage, on stdout.
func (m *Main) helpCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl help", flag.ContinueOnError)
	return &ffcli.Command{
		Name: "help", ShortUsage: "optoutctl help [COMMAND [SUBCOMMAND]]", ShortHelp: "show the usage of optoutctl or of a command",
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			c, path := m.root, "optoutctl"
			for _, a := range args {
				var next *ffcli.Command
				for _, sub := range c.Subcommands {
					if sub.Name == a {
						next = sub
					}
				}
				if next == nil {
					return &usageError{err: unknownCommand(path, a, c.Subcommands), brief: true}
				}
				c, path = next, path+" "+a
			}
			_, err := fmt.Fprintln(m.Stdout, usageOf(c, c))
			return err
		},
	}
}

// ParseFlags parses args (without the program name).
func (m *Main) ParseFlags(args []string) error {
	if err := m.root.Parse(args); err != nil {
		return err
	}
	if err := checkOutput(m.output); err != nil {
		return &usageError{err: err}
	}
	return nil
}

// Run runs the selected command.
func (m *Main) Run(ctx context.Context) error { return m.root.Run(ctx) }

func (m *Main) client() (*client.Client, error) {
	opts, err := m.security()
	if err != nil {
		return nil, err
	}
	return client.New(strings.Split(m.endpoints, ","), opts...)
}

func (m *Main) withClient(ctx context.Context, fn func(context.Context, *client.Client) (proto.Message, error)) error {
	c, err := m.client()
	if err != nil {
		return fmt.Errorf("--endpoints: %w", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	msg, err := fn(ctx, c)
	if err != nil {
		return err
	}
	return m.emit(msg)
}

// positional collects the arguments left after flags, allowing flags after
// positional arguments too (optoutctl set u1 p opted_out --source cli), and
// checks their number.
func positional(fs *flag.FlagSet, n int, usage string, got []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(got); err != nil {
			return nil, err
		}
		got = fs.Args()
		if len(got) == 0 {
			break
		}
		pos = append(pos, got[0])
		got = got[1:]
	}
	if len(pos) != n {
		return nil, &usageError{err: fmt.Errorf("usage: %s (got %d arguments)", usage, len(pos))}
	}
	return pos, nil
}

func (m *Main) setCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl set", flag.ContinueOnError)
	source := fs.String("source", "optoutctl", "who made the change")
	reason := fs.String("reason", "", "why")
	expected := fs.String("expected-version", "", "compare-and-set: apply only if the current version is this (0: must not exist)")
	const usage = "optoutctl set SUBJECT PURPOSE opted_out|opted_in [--source S] [--reason R] [--expected-version N]"
	return &ffcli.Command{
		Name: "set", ShortUsage: usage, ShortHelp: "write a subject's state for a purpose", FlagSet: fs,
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 3, usage, a)
			if err != nil {
				return err
			}
			req := &optoutv1.SetRequest{SubjectId: a[0], Purpose: a[1], Source: *source, Reason: *reason}
			switch a[2] {
			case "opted_out", "out":
				req.State = optoutv1.State_STATE_OPTED_OUT
			case "opted_in", "in":
				req.State = optoutv1.State_STATE_OPTED_IN
			default:
				return fmt.Errorf("state: %q is not opted_out or opted_in", a[2])
			}
			if *expected != "" {
				v, err := strconv.ParseUint(*expected, 10, 64)
				if err != nil {
					return fmt.Errorf("--expected-version: %q is not a non-negative integer", *expected)
				}
				req.ExpectedVersion = &v
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				r, err := c.Set(ctx, req)
				if err != nil {
					return nil, &writeError{err}
				}
				return r, nil
			})
		},
	}
}

func (m *Main) checkCmd() *ffcli.Command {
	const usage = "optoutctl check SUBJECT PURPOSE"
	fs := flag.NewFlagSet("optoutctl check", flag.ContinueOnError)
	receipt := fs.Bool("receipt", false, "also get a signed decision receipt, to attach to the event processed under this answer")
	return &ffcli.Command{
		Name: "check", ShortUsage: usage, ShortHelp: "may I process this subject's data for this purpose?",
		FlagSet: fs,
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 2, usage, a)
			if err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.Check(ctx, &optoutv1.CheckRequest{SubjectId: a[0], Purpose: a[1], Receipt: *receipt})
			})
		},
	}
}

func (m *Main) getCmd() *ffcli.Command {
	const usage = "optoutctl get SUBJECT PURPOSE"
	fs := flag.NewFlagSet("optoutctl get", flag.ContinueOnError)
	return &ffcli.Command{
		Name: "get", ShortUsage: usage, ShortHelp: "read the stored record",
		FlagSet: fs,
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 2, usage, a)
			if err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.Get(ctx, &optoutv1.GetRequest{SubjectId: a[0], Purpose: a[1]})
			})
		},
	}
}

func (m *Main) eraseCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl erase", flag.ContinueOnError)
	reason := fs.String("reason", "", "why (kept only as an HMAC)")
	const usage = "optoutctl erase SUBJECT [--reason R]"
	return &ffcli.Command{
		Name: "erase", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "erase a subject's identifier from records and history, keeping it suppressed",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 1, usage, a)
			if err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.EraseSubject(ctx, &optoutv1.EraseSubjectRequest{SubjectId: a[0], Reason: *reason})
			})
		},
	}
}

func (m *Main) statusCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl status", flag.ContinueOnError)
	return &ffcli.Command{
		Name: "status", ShortUsage: "optoutctl status", ShortHelp: "show the first reachable node's view of the cluster",
		FlagSet: fs,
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(fs, 0, "optoutctl status", a); err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.Status(ctx)
			})
		},
	}
}

// writeError marks the error of a write, so describe can say whether it
// may have been applied even when no WriteOutcome detail arrived (our own
// --timeout passed, or the connection broke, while it was in flight).
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// describe renders an error with its wire code and, for writes, whether
// it may have been applied.
func describe(err error) string {
	s := err.Error()
	var (
		ce  *connect.Error
		all *client.AllFailedError
	)
	if errors.As(err, &all) {
		s = describeAll(all)
	} else if errors.As(err, &ce) {
		s = fmt.Sprintf("%s: %s", ce.Code(), ce.Message())
	}
	if v, ok := client.CurrentVersion(err); ok && !strings.Contains(s, fmt.Sprintf("current version %d", v)) {
		// Once: the server's own messages usually state it already.
		s += fmt.Sprintf(" (current version %d)", v)
	}
	var we *writeError
	if errors.As(err, &we) || hasWriteOutcome(ce) {
		if client.Outcome(err) == optoutv1.Outcome_OUTCOME_NOT_APPLIED {
			s += "; the write was not applied, retrying is safe"
		} else {
			s += "; the write MAY have been applied: read before retrying"
		}
	}
	if all != nil && all.Unreachable() {
		s += "\nIs a cluster running there? Give its API addresses with --endpoints H:P,... or OPTOUT_ENDPOINTS."
	}
	return s
}

// describeAll names every endpoint tried and how each failed.
func describeAll(all *client.AllFailedError) string {
	var b strings.Builder
	if all.Unreachable() {
		fmt.Fprintf(&b, "cannot reach the cluster: no endpoint answered (%d tried)", len(all.Errs))
	} else {
		fmt.Fprintf(&b, "every endpoint failed (%d tried)", len(all.Errs))
	}
	for _, f := range all.Errs {
		msg := f.Err.Error()
		var ce *connect.Error
		if errors.As(f.Err, &ce) {
			msg = fmt.Sprintf("%s: %s", ce.Code(), ce.Message())
		}
		fmt.Fprintf(&b, "\n  %s: %s", f.Endpoint, msg)
	}
	return b.String()
}

// hasWriteOutcome reports whether the server said what became of a write
// (every write RPC's error carries it, whichever command sent it).
func hasWriteOutcome(ce *connect.Error) bool {
	if ce == nil {
		return false
	}
	for _, d := range ce.Details() {
		if m, err := d.Value(); err == nil {
			if _, ok := m.(*optoutv1.WriteOutcome); ok {
				return true
			}
		}
	}
	return false
}

func group(name, usage, help string, subs ...*ffcli.Command) *ffcli.Command {
	g := &ffcli.Command{
		Name: name, ShortUsage: usage, ShortHelp: help, Subcommands: subs,
		FlagSet: flag.NewFlagSet("optoutctl "+name, flag.ContinueOnError),
	}
	g.Exec = func(_ context.Context, args []string) error {
		if len(args) > 0 {
			return &usageError{err: unknownCommand("optoutctl "+name, args[0], subs), c: g}
		}
		return &usageError{err: fmt.Errorf("usage: %s", usage), c: g}
	}
	return g
}
