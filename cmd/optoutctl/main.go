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
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain(os.Stdout, os.Stderr)
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "optoutctl:", err)
		}
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		if errors.Is(err, flag.ErrHelp) { // no command given
			m.root.FlagSet.Usage()
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "optoutctl:", describe(err))
		os.Exit(1)
	}
}

// Main is the program, split so tests run it in-process.
type Main struct {
	Stdout, Stderr io.Writer
	root           *ffcli.Command
	endpoints      string
	timeout        time.Duration
	caCert, cert   string
	key, token     string
}

// NewMain builds the command tree.
func NewMain(stdout, stderr io.Writer) *Main {
	m := &Main{Stdout: stdout, Stderr: stderr}
	fs := flag.NewFlagSet("optoutctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&m.endpoints, "endpoints", "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003", "comma-separated API addresses, tried in turn")
	fs.DurationVar(&m.timeout, "timeout", 5*time.Second, "deadline of each command")
	fs.StringVar(&m.caCert, "cacert", "", "CA bundle that verifies the API's certificate (turns on HTTPS)")
	fs.StringVar(&m.cert, "cert", "", "client certificate to present (needs --key)")
	fs.StringVar(&m.key, "key", "", "key of --cert")
	fs.StringVar(&m.token, "token", "", "bearer token (prefer OPTOUT_TOKEN, so it stays out of shell history)")
	m.root = &ffcli.Command{
		Name:       "optoutctl",
		ShortUsage: "optoutctl [--endpoints H:P,...] <command> [flags] [args]",
		LongHelp:   "Every flag can also be set through OPTOUT_<FLAG>, e.g. OPTOUT_ENDPOINTS.",
		FlagSet:    fs,
		Options:    []ff.Option{ff.WithEnvVarPrefix("OPTOUT")},
		Subcommands: []*ffcli.Command{
			m.setCmd(), m.checkCmd(), m.getCmd(), m.statusCmd(),
			m.eraseCmd(), m.purposeCmd(), m.historyCmd(), m.stateAtCmd(), m.auditCmd(), m.watchCmd(), m.adminCmd(), m.membersCmd(),
			m.tlsCmd(), m.tokenCmd(), m.certCmd(),
			m.snapshotCmd(),
		},
		Exec: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				names := make([]string, 0, len(m.root.Subcommands))
				for _, c := range m.root.Subcommands {
					names = append(names, c.Name)
				}
				return fmt.Errorf("unknown command %q: want one of %s", args[0], strings.Join(names, ", "))
			}
			return flag.ErrHelp
		},
	}
	for _, c := range m.root.Subcommands {
		c.FlagSet.SetOutput(stderr)
	}
	return m
}

// ParseFlags parses args (without the program name).
func (m *Main) ParseFlags(args []string) error { return m.root.Parse(args) }

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
	return m.print(msg)
}

func (m *Main) print(msg proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(msg)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(m.Stdout, string(b))
	return err
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
		return nil, fmt.Errorf("usage: %s (got %d arguments)", usage, len(pos))
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
	return &ffcli.Command{
		Name: "check", ShortUsage: usage, ShortHelp: "may I process this subject's data for this purpose?",
		FlagSet: flag.NewFlagSet("optoutctl check", flag.ContinueOnError),
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(flag.NewFlagSet("optoutctl check", flag.ContinueOnError), 2, usage, a)
			if err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.Check(ctx, &optoutv1.CheckRequest{SubjectId: a[0], Purpose: a[1]})
			})
		},
	}
}

func (m *Main) getCmd() *ffcli.Command {
	const usage = "optoutctl get SUBJECT PURPOSE"
	return &ffcli.Command{
		Name: "get", ShortUsage: usage, ShortHelp: "read the stored record",
		FlagSet: flag.NewFlagSet("optoutctl get", flag.ContinueOnError),
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(flag.NewFlagSet("optoutctl get", flag.ContinueOnError), 2, usage, a)
			if err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.Get(ctx, &optoutv1.GetRequest{SubjectId: a[0], Purpose: a[1]})
			})
		},
	}
}

func (m *Main) statusCmd() *ffcli.Command {
	return &ffcli.Command{
		Name: "status", ShortUsage: "optoutctl status", ShortHelp: "show the first reachable node's view of the cluster",
		FlagSet: flag.NewFlagSet("optoutctl status", flag.ContinueOnError),
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(flag.NewFlagSet("optoutctl status", flag.ContinueOnError), 0, "optoutctl status", a); err != nil {
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
	var ce *connect.Error
	if errors.As(err, &ce) {
		s = fmt.Sprintf("%s: %s", ce.Code(), ce.Message())
	}
	if v, ok := client.CurrentVersion(err); ok {
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
	return s
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

// printLine writes msg as one line of JSON (for streams).
func (m *Main) printLine(msg proto.Message) error {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(msg)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(m.Stdout, string(b))
	return err
}
