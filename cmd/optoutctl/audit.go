package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/proto"
)

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
