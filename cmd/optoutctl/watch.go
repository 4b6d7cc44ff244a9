package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/optoutd/optoutd/client"
	"github.com/peterbourgon/ff/v3/ffcli"
)

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
