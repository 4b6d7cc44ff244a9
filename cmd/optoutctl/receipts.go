package main

import (
	"context"
	"flag"

	"github.com/optoutd/optoutd/client"
	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/proto"
)

// receiptCmd is "optoutctl receipt ...": verify a receipt, fence an event
// with it, and manage the signing keys. Like check, verify and
// should-process exit 0 whatever the answer (a forged receipt, DISCARD):
// the answer is in the output; exit 1 means there was no answer.
func (m *Main) receiptCmd() *ffcli.Command {
	return group("receipt", "optoutctl receipt <verify|should-process|keys|rotate-key>",
		"signed decision receipts: verify, fence a queued event, signing keys",
		m.receiptVerifyCmd(), m.shouldProcessCmd(), m.receiptKeysCmd(), m.rotateKeyCmd())
}

func (m *Main) receiptVerifyCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl receipt verify", flag.ContinueOnError)
	subject := fs.String("subject", "", "the subject of the event the receipt travelled with (required)")
	const usage = "optoutctl receipt verify --subject S RECEIPT"
	return &ffcli.Command{
		Name: "verify", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "check a receipt's signature and subject, and whether the subject's state changed since (exit 0 for any status)",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 1, usage, a)
			if err != nil {
				return err
			}
			if err := checkSubject("--subject", *subject, true); err != nil {
				return err
			}
			if err := checkReceipt("RECEIPT", a[0]); err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.VerifyReceipt(ctx, a[0], *subject)
			})
		},
	}
}

func (m *Main) shouldProcessCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl receipt should-process", flag.ContinueOnError)
	service := fs.String("service", "", "the consuming service, as counted in the fence stats (required; [a-z0-9_.-]{1,64})")
	subject := fs.String("subject", "", "the subject of the queued event (required)")
	const usage = "optoutctl receipt should-process --service SVC --subject S RECEIPT"
	return &ffcli.Command{
		Name: "should-process", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "the fence: may a queued event with this receipt be processed now? (VERDICT_PROCESS or VERDICT_DISCARD; exit 0 for either)",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 1, usage, a)
			if err != nil {
				return err
			}
			if err := needService(*service); err != nil {
				return err
			}
			if err := checkSubject("--subject", *subject, true); err != nil {
				return err
			}
			if err := checkReceipt("RECEIPT", a[0]); err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.ShouldProcess(ctx, *service, a[0], *subject)
			})
		},
	}
}

func (m *Main) receiptKeysCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl receipt keys", flag.ContinueOnError)
	const usage = "optoutctl receipt keys"
	return &ffcli.Command{
		Name: "keys", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "every receipt signing key the cluster ever used (public halves), newest first",
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(fs, 0, usage, a); err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.ListReceiptKeys(ctx)
			})
		},
	}
}

func (m *Main) rotateKeyCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl receipt rotate-key", flag.ContinueOnError)
	const usage = "optoutctl receipt rotate-key"
	return &ffcli.Command{
		Name: "rotate-key", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "make a new signing key current (admin); receipts of older keys stay verifiable",
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(fs, 0, usage, a); err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				r, err := c.RotateReceiptKey(ctx)
				if err != nil {
					return nil, &writeError{err}
				}
				return r, nil
			})
		},
	}
}
