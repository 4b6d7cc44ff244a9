package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// overrideCmd is "optoutctl override ...": break-glass overrides. Every
// override expires; the cluster caps how far ahead (override cap).
func (m *Main) overrideCmd() *ffcli.Command {
	return group("override", "optoutctl override <create|list|revoke|cap>",
		"expiring overrides: ALLOW bypasses opt-outs (admin), DENY is a kill switch",
		m.overrideCreateCmd(), m.overrideListCmd(), m.overrideRevokeCmd(), m.overrideCapCmd())
}

func (m *Main) overrideCreateCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl override create", flag.ContinueOnError)
	purpose := fs.String("purpose", "", `a defined purpose, or "all" (required)`)
	subject := fs.String("subject", "", "only this subject (default: everyone, the whole purpose)")
	effect := fs.String("effect", "", "allow (bypass opt-outs; needs the admin role) or deny (a kill switch) (required)")
	reason := fs.String("reason", "", "why, e.g. an incident id (required; at most 256 bytes)")
	owner := fs.String("owner", "", "who answers for it (required; at most 128 bytes)")
	expiresIn := fs.String("expires-in", "", "ends this long from now, e.g. 2h (give this or --expires-at)")
	expiresAt := fs.String("expires-at", "", "ends at this RFC 3339 time (give this or --expires-in)")
	const usage = "optoutctl override create --purpose P [--subject S] --effect allow|deny --reason R --owner O --expires-in D|--expires-at T"
	return &ffcli.Command{
		Name: "create", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "open an override that ends by itself (within the cluster's cap, default 24h)",
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(fs, 0, usage, a); err != nil {
				return err
			}
			req, err := overrideRequest(*purpose, *subject, *effect, *reason, *owner, *expiresIn, *expiresAt, time.Now())
			if err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				o, err := c.CreateOverride(ctx, req)
				if err != nil {
					return nil, &writeError{err}
				}
				return o, nil
			})
		},
	}
}

// overrideRequest checks create's flags, in the order of the usage, and
// names the first bad one.
func overrideRequest(purpose, subject, effect, reason, owner, in, at string, now time.Time) (*optoutv1.CreateOverrideRequest, error) {
	if purpose == "" {
		return nil, errors.New(`--purpose: required: a defined purpose, or "all"`)
	}
	if err := optionalPurpose(purpose); err != nil {
		return nil, err
	}
	if err := checkSubject("--subject", subject, false); err != nil {
		return nil, err
	}
	eff, err := effectOf(effect)
	if err != nil {
		return nil, err
	}
	if err := checkText("--reason", reason, optoutd.MaxReasonBytes, "say why the override is needed"); err != nil {
		return nil, err
	}
	if err := checkText("--owner", owner, optoutd.MaxOwnerBytes, "name who answers for the override"); err != nil {
		return nil, err
	}
	var end time.Time
	switch {
	case in == "" && at == "":
		return nil, errors.New("--expires-in or --expires-at: give one: every override must expire")
	case in != "" && at != "":
		return nil, errors.New("--expires-in and --expires-at: give one, not both")
	case in != "":
		// The cluster's cap is at most 720h; the server checks its own.
		d, err := parseDuration("--expires-in", in, time.Second, optoutd.MaxMaxOverride)
		if err != nil {
			return nil, err
		}
		end = now.Add(d)
	default:
		if end, err = parseTime("--expires-at", at); err != nil {
			return nil, err
		}
		if !end.After(now) {
			return nil, fmt.Errorf("--expires-at: %s is not in the future", end.Format(time.RFC3339))
		}
		if end.Sub(now) > optoutd.MaxMaxOverride {
			return nil, fmt.Errorf("--expires-at: %s is over %v from now, longer than any cluster allows", end.Format(time.RFC3339), optoutd.MaxMaxOverride)
		}
	}
	return &optoutv1.CreateOverrideRequest{SubjectId: subject, Purpose: purpose, Effect: eff, Reason: reason, Owner: owner,
		ExpiresAt: timestamppb.New(end)}, nil
}

func (m *Main) overrideListCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl override list", flag.ContinueOnError)
	all := fs.Bool("all", false, "also revoked and expired overrides")
	purpose := fs.String("purpose", "", "only this purpose")
	limit := fs.Uint("limit", 0, "at most this many (1..1000; default 100)")
	const usage = "optoutctl override list [--all] [--purpose P] [--limit N]"
	return &ffcli.Command{
		Name: "list", ShortUsage: usage, FlagSet: fs, ShortHelp: "active overrides (with --all, ended ones too), newest first",
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(fs, 0, usage, a); err != nil {
				return err
			}
			if err := optionalPurpose(*purpose); err != nil {
				return err
			}
			n, err := parseLimit(*limit)
			if err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.ListOverrides(ctx, &optoutv1.ListOverridesRequest{IncludeEnded: *all, Purpose: *purpose, Limit: n})
			})
		},
	}
}

func (m *Main) overrideRevokeCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl override revoke", flag.ContinueOnError)
	reason := fs.String("reason", "", "why it ends early (required; at most 256 bytes)")
	const usage = "optoutctl override revoke ID --reason R"
	return &ffcli.Command{
		Name: "revoke", ShortUsage: usage, FlagSet: fs, ShortHelp: "end an active override before its expiry",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 1, usage, a)
			if err != nil {
				return err
			}
			id, err := parseID("ID", a[0])
			if err != nil {
				return err
			}
			if err := checkText("--reason", *reason, optoutd.MaxReasonBytes, "say why the override ends early"); err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				o, err := c.RevokeOverride(ctx, id, *reason)
				if err != nil {
					return nil, &writeError{err}
				}
				return o, nil
			})
		},
	}
}

func (m *Main) overrideCapCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl override cap", flag.ContinueOnError)
	const usage = "optoutctl override cap DURATION"
	return &ffcli.Command{
		Name: "cap", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "the longest an override may last, 1m to 720h (admin; default 24h)",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 1, usage, a)
			if err != nil {
				return err
			}
			d, err := parseDuration("DURATION", a[0], optoutd.MinMaxOverride, optoutd.MaxMaxOverride)
			if err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				s, err := c.SetMaxOverrideDuration(ctx, d)
				if err != nil {
					return nil, &writeError{err}
				}
				return s, nil
			})
		},
	}
}
