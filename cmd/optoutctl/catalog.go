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
