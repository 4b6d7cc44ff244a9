package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/proto"
)

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

func (m *Main) purposeCmd() *ffcli.Command {
	defFS := flag.NewFlagSet("optoutctl purpose define", flag.ContinueOnError)
	desc := defFS.String("description", "", "what the purpose covers")
	expected := defFS.String("expected-catalog-version", "", "apply only if the catalog version is this")
	const defUsage = "optoutctl purpose define NAME allow|deny [--description D] [--expected-catalog-version N]"
	define := &ffcli.Command{
		Name: "define", ShortUsage: defUsage, FlagSet: defFS,
		ShortHelp: "create or redefine a purpose (allow: opt-out model; deny: opt-in model)",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(defFS, 2, defUsage, a)
			if err != nil {
				return err
			}
			p := &optoutv1.Purpose{Name: a[0], Description: *desc}
			switch a[1] {
			case "allow":
				p.DefaultDecision = optoutv1.Default_DEFAULT_ALLOW
			case "deny":
				p.DefaultDecision = optoutv1.Default_DEFAULT_DENY
			default:
				return fmt.Errorf("default: %q is not allow or deny", a[1])
			}
			req := &optoutv1.DefinePurposeRequest{Purpose: p}
			if *expected != "" {
				v, err := strconv.ParseUint(*expected, 10, 64)
				if err != nil {
					return fmt.Errorf("--expected-catalog-version: %q is not a non-negative integer", *expected)
				}
				req.ExpectedCatalogVersion = &v
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.DefinePurpose(ctx, req)
			})
		},
	}
	listFS := flag.NewFlagSet("optoutctl purpose list", flag.ContinueOnError)
	list := &ffcli.Command{
		Name: "list", ShortUsage: "optoutctl purpose list", ShortHelp: "list the catalog", FlagSet: listFS,
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(listFS, 0, "optoutctl purpose list", a); err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.ListPurposes(ctx)
			})
		},
	}
	getFS := flag.NewFlagSet("optoutctl purpose get", flag.ContinueOnError)
	get := &ffcli.Command{
		Name: "get", ShortUsage: "optoutctl purpose get NAME", ShortHelp: "show one purpose", FlagSet: getFS,
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(getFS, 1, "optoutctl purpose get NAME", a)
			if err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.GetPurpose(ctx, a[0])
			})
		},
	}
	return group("purpose", "optoutctl purpose <define|list|get>", "manage the purpose catalog", define, list, get)
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

func (m *Main) historyCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl history", flag.ContinueOnError)
	purpose := fs.String("purpose", "", "only this purpose")
	size := fs.Uint("page-size", 0, "entries per page (1..1000; default 100)")
	token := fs.String("page-token", "", "next_page_token of a previous page")
	const usage = "optoutctl history SUBJECT [--purpose P] [--page-size N] [--page-token T]"
	return &ffcli.Command{
		Name: "history", ShortUsage: usage, FlagSet: fs, ShortHelp: "a subject's changes, newest first",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 1, usage, a)
			if err != nil {
				return err
			}
			if *size > 1000 {
				return fmt.Errorf("--page-size: %d is over the limit of 1000", *size)
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.History(ctx, &optoutv1.HistoryRequest{SubjectId: a[0], Purpose: *purpose, PageSize: uint32(*size), PageToken: *token})
			})
		},
	}
}

func (m *Main) stateAtCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl state-at", flag.ContinueOnError)
	const usage = "optoutctl state-at SUBJECT PURPOSE VERSION"
	return &ffcli.Command{
		Name: "state-at", ShortUsage: usage, FlagSet: fs, ShortHelp: "what was decided for a subject and purpose as of a version",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 3, usage, a)
			if err != nil {
				return err
			}
			v, err := strconv.ParseUint(a[2], 10, 64)
			if err != nil {
				return fmt.Errorf("VERSION: %q is not a non-negative integer", a[2])
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.StateAt(ctx, &optoutv1.StateAtRequest{SubjectId: a[0], Purpose: a[1], Version: v})
			})
		},
	}
}

func (m *Main) auditCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl audit verify", flag.ContinueOnError)
	verify := &ffcli.Command{
		Name: "verify", ShortUsage: "optoutctl audit verify", FlagSet: fs,
		ShortHelp: "walk the audit hash chain on a node and report the first break (exit 1 if broken)",
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(fs, 0, "optoutctl audit verify", a); err != nil {
				return err
			}
			var rep *optoutv1.VerifyAuditResponse
			err := m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				r, err := c.VerifyAudit(ctx)
				rep = r
				return r, err
			})
			if err == nil && !rep.Ok {
				return fmt.Errorf("audit chain BROKEN at version %d: %s", rep.BrokenAt, rep.Problem)
			}
			return err
		},
	}
	return group("audit", "optoutctl audit verify", "check the tamper-evident history", verify)
}

func (m *Main) watchCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl watch", flag.ContinueOnError)
	from := fs.Uint64("from-version", 0, "send changes after this version")
	purposes := fs.String("purposes", "", "comma-separated purposes to follow (\"all\" always included); empty: every purpose")
	count := fs.Int("count", 0, "stop after this many changes (0: run until interrupted)")
	const usage = "optoutctl watch [--from-version N] [--purposes p1,p2] [--count N]"
	return &ffcli.Command{
		Name: "watch", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "stream changes as JSON lines, reconnecting across node failures without gaps or repeats",
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(fs, 0, usage, a); err != nil {
				return err
			}
			if *count < 0 {
				return fmt.Errorf("--count: %d is negative", *count)
			}
			c, err := m.client()
			if err != nil {
				return fmt.Errorf("--endpoints: %w", err)
			}
			defer c.Close()
			var ps []string
			if *purposes != "" {
				ps = strings.Split(*purposes, ",")
			}
			seen := 0
			errDone := fmt.Errorf("done")
			out := &stream{m: m}
			err = c.Watch(ctx, *from, ps, func(ev client.WatchEvent) error {
				if ev.Change == nil {
					return nil
				}
				if err := out.emit(ev.Change); err != nil {
					return err
				}
				seen++
				if *count > 0 && seen >= *count {
					return errDone
				}
				return nil
			})
			if errors.Is(err, errDone) || ctx.Err() != nil {
				return nil
			}
			return err
		},
	}
}

func (m *Main) adminCmd() *ffcli.Command {
	showFS := flag.NewFlagSet("optoutctl admin settings", flag.ContinueOnError)
	show := &ffcli.Command{
		Name: "settings", ShortUsage: "optoutctl admin settings", FlagSet: showFS, ShortHelp: "show the replicated settings",
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(showFS, 0, "optoutctl admin settings", a); err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.GetSettings(ctx)
			})
		},
	}
	minFS := flag.NewFlagSet("optoutctl admin min-schema", flag.ContinueOnError)
	minCmd := &ffcli.Command{
		Name: "min-schema", ShortUsage: "optoutctl admin min-schema N", FlagSet: minFS,
		ShortHelp: "refuse clients built against a schema older than N (0: no minimum)",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(minFS, 1, "optoutctl admin min-schema N", a)
			if err != nil {
				return err
			}
			v, err := strconv.ParseUint(a[0], 10, 32)
			if err != nil {
				return fmt.Errorf("min-schema: %q is not a non-negative integer", a[0])
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.SetMinSchemaVersion(ctx, uint32(v))
			})
		},
	}
	retFS := flag.NewFlagSet("optoutctl admin audit-retention", flag.ContinueOnError)
	ret := &ffcli.Command{
		Name: "audit-retention", ShortUsage: "optoutctl admin audit-retention DURATION", FlagSet: retFS,
		ShortHelp: "keep history for DURATION (e.g. 8760h); 0 keeps it forever",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(retFS, 1, "optoutctl admin audit-retention DURATION", a)
			if err != nil {
				return err
			}
			d, err := time.ParseDuration(a[0])
			if err != nil {
				return fmt.Errorf("DURATION: %q is not a duration like 8760h", a[0])
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.SetAuditRetention(ctx, d)
			})
		},
	}
	return group("admin", "optoutctl admin <settings|min-schema|audit-retention>", "cluster-wide settings", show, minCmd, ret)
}
