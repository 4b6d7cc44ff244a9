package main

import (
	"context"
	"flag"

	"github.com/optoutd/optoutd/client"
	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/proto"
)

func (m *Main) membersCmd() *ffcli.Command {
	sub := func(name, usage, help string, nargs int, call func(context.Context, *client.Client, []string) (proto.Message, error)) *ffcli.Command {
		fs := flag.NewFlagSet("optoutctl members "+name, flag.ContinueOnError)
		fs.SetOutput(m.Stderr)
		return &ffcli.Command{
			Name: name, ShortUsage: usage, ShortHelp: help, FlagSet: fs,
			Exec: func(ctx context.Context, a []string) error {
				a, err := positional(fs, nargs, usage, a)
				if err != nil {
					return err
				}
				return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
					return call(ctx, c, a)
				})
			},
		}
	}
	list := sub("list", "optoutctl members list", "list members, their roles and addresses", 0,
		func(ctx context.Context, c *client.Client, _ []string) (proto.Message, error) { return c.Status(ctx) })
	add := sub("add", "optoutctl members add ID RAFT_ADDR", "add a node as a learner (promoted automatically once caught up)", 2,
		func(ctx context.Context, c *client.Client, a []string) (proto.Message, error) {
			return c.AddMember(ctx, a[0], a[1], false)
		})
	promote := sub("promote", "optoutctl members promote ID", "make a learner a voter now", 1,
		func(ctx context.Context, c *client.Client, a []string) (proto.Message, error) {
			return c.PromoteMember(ctx, a[0])
		})
	remove := sub("remove", "optoutctl members remove ID", "remove a node (the leader hands over leadership first)", 1,
		func(ctx context.Context, c *client.Client, a []string) (proto.Message, error) {
			return c.RemoveMember(ctx, a[0])
		})
	transferFS := flag.NewFlagSet("optoutctl members transfer-leader", flag.ContinueOnError)
	transferFS.SetOutput(m.Stderr)
	const transferUsage = "optoutctl members transfer-leader [ID]"
	transfer := &ffcli.Command{
		Name: "transfer-leader", ShortUsage: transferUsage, FlagSet: transferFS,
		ShortHelp: "hand leadership to ID, or to any caught-up voter",
		Exec: func(ctx context.Context, a []string) error {
			var to string
			if rest, err := positional(transferFS, 1, transferUsage, a); err == nil {
				to = rest[0]
			} else if _, err0 := positional(transferFS, 0, transferUsage, a); err0 != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.TransferLeadership(ctx, to)
			})
		},
	}
	return group("members", "optoutctl members <list|add|promote|remove|transfer-leader>", "scale the cluster", list, add, promote, remove, transfer)
}
