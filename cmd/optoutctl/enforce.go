package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/receipt"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// The checks below run before anything is sent, so a mistake on the
// command line names the flag (the server would name the wire field).

// needService checks a --service value: required, and a name the cluster
// accepts as a metric label.
func needService(s string) error {
	if s == "" {
		return errors.New("--service: required: name the service that processes the events")
	}
	return optionalService(s)
}

// optionalService checks a --service filter ("" for every service).
func optionalService(s string) error {
	if s != "" && optoutd.ValidateService(s) != nil {
		return fmt.Errorf("--service: %q must match [a-z0-9_.-]{1,64}", s)
	}
	return nil
}

// optionalPurpose checks a --purpose filter ("" for every purpose).
func optionalPurpose(p string) error {
	if p != "" && optoutd.ValidatePurpose(p) != nil {
		return fmt.Errorf("--purpose: %q must match [a-z0-9_.-]{1,64}", p)
	}
	return nil
}

// checkSubject checks a subject id given by flag or argument name: 1 to
// 256 bytes of UTF-8 ("" is allowed when not required).
func checkSubject(name, s string, required bool) error {
	switch {
	case s == "" && required:
		return fmt.Errorf("%s: required", name)
	case len(s) > optoutd.MaxSubjectIDBytes:
		return fmt.Errorf("%s: %d bytes is over the limit of %d", name, len(s), optoutd.MaxSubjectIDBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s: must be valid UTF-8", name)
	}
	return nil
}

// checkText checks a required free-text flag against its limit.
func checkText(name, s string, limit int, why string) error {
	if s == "" {
		return fmt.Errorf("%s: required: %s", name, why)
	}
	if len(s) > limit {
		return fmt.Errorf("%s: %d bytes is over the limit of %d", name, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: must be valid UTF-8", name)
	}
	return nil
}

// checkReceipt checks a receipt's length (its content is the server's to
// judge: a forged receipt is an answer, not a usage mistake).
func checkReceipt(name, r string) error {
	if len(r) > receipt.MaxLen {
		return fmt.Errorf("%s: %d bytes is over the limit of %d (a receipt is about 200)", name, len(r), receipt.MaxLen)
	}
	return nil
}

// parseLimit checks a --limit of a listing: 0 (the server's 100) to 1000.
func parseLimit(n uint) (uint32, error) {
	if n > optoutd.MaxHistoryPage {
		return 0, fmt.Errorf("--limit: %d is over the limit of %d", n, optoutd.MaxHistoryPage)
	}
	return uint32(n), nil
}

// parseTime parses an RFC 3339 time given to flag name.
func parseTime(name, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 time like 2026-01-02T15:04:05Z", name, s)
	}
	return t, nil
}

// parseDuration parses a Go duration given to flag name, within lo..hi.
func parseDuration(name, s string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration like 2h or 90m", name, s)
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s: %v must be between %v and %v", name, d, lo, hi)
	}
	return d, nil
}

// parseID parses a positive integer argument (an override id).
func parseID(name, s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("%s: %q is not a positive integer", name, s)
	}
	return v, nil
}

// fenceStats is the cluster's ShouldProcess counts: every node's, summed.
type fenceStats struct {
	Nodes  []fenceNode  `json:"nodes"`
	Counts []fenceCount `json:"counts"`
}

type fenceNode struct {
	NodeID   string `json:"nodeId"`
	Endpoint string `json:"endpoint"`
	Uptime   string `json:"uptime"`
}

type fenceCount struct {
	Service string `json:"service"`
	Purpose string `json:"purpose"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	Count   uint64 `json:"count"`
}

// fenceCmd is "optoutctl fence stats": each node counts the ShouldProcess
// answers it gave since it started, so the command asks every endpoint
// and sums. A node that does not answer fails the command: a sum without
// it would undercount (name only the live nodes with --endpoints to see
// theirs). Two endpoints of one node are counted once.
func (m *Main) fenceCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl fence stats", flag.ContinueOnError)
	const usage = "optoutctl fence stats"
	stats := &ffcli.Command{
		Name: "stats", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "ShouldProcess verdicts by service, purpose and reason, summed over every endpoint",
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(fs, 0, usage, a); err != nil {
				return err
			}
			c, err := m.client()
			if err != nil {
				return fmt.Errorf("--endpoints: %w", err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(ctx, m.timeout)
			defer cancel()
			out := fenceStats{Nodes: []fenceNode{}, Counts: []fenceCount{}}
			sum := map[fenceCount]uint64{}
			seen := map[string]bool{}
			for i, ep := range c.Endpoints() {
				st, err := c.FenceStatsOf(ctx, i)
				if err != nil {
					return fmt.Errorf("fence stats of %s (the sum would leave that node out): %w", ep, err)
				}
				node := st.NodeId
				if node == "" { // a server that does not say: one per endpoint
					node = ep
				}
				if seen[node] {
					continue
				}
				seen[node] = true
				out.Nodes = append(out.Nodes, fenceNode{NodeID: st.NodeId, Endpoint: ep, Uptime: st.Uptime.AsDuration().Round(time.Second).String()})
				for _, n := range st.Counts {
					sum[fenceCount{Service: n.Service, Purpose: n.Purpose, Verdict: n.Verdict.String(), Reason: n.Reason.String()}] += n.Count
				}
			}
			for k, n := range sum {
				k.Count = n
				out.Counts = append(out.Counts, k)
			}
			sort.Slice(out.Counts, func(i, j int) bool {
				a, b := out.Counts[i], out.Counts[j]
				if a.Service != b.Service {
					return a.Service < b.Service
				}
				if a.Purpose != b.Purpose {
					return a.Purpose < b.Purpose
				}
				if a.Verdict != b.Verdict {
					return a.Verdict < b.Verdict
				}
				return a.Reason < b.Reason
			})
			return m.emit(out)
		},
	}
	return group("fence", usage, "the re-check of queued events at processing time", stats)
}

// effectOf parses --effect.
func effectOf(s string) (optoutv1.OverrideEffect, error) {
	switch s {
	case "allow":
		return optoutv1.OverrideEffect_OVERRIDE_EFFECT_ALLOW, nil
	case "deny":
		return optoutv1.OverrideEffect_OVERRIDE_EFFECT_DENY, nil
	case "":
		return 0, errors.New("--effect: required: allow (bypass opt-outs; admin only) or deny (a kill switch)")
	}
	return 0, fmt.Errorf("--effect: %q is not allow or deny", s)
}
