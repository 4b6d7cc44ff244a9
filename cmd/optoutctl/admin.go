package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/optoutd/optoutd/client"
	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/proto"
)

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
