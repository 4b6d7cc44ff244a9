package db

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ours reports whether a name was made by this package.
func ours(name string) bool { return strings.HasPrefix(name, Prefix+"-") }

// parseNetns parses `ip netns list` ("name (id: 3)" lines).
func parseNetns(out string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && ours(f[0]) {
			names = append(names, f[0])
		}
	}
	return names
}

// parseLinks parses `ip -o link show` ("7: ojp-n1-h@if6: <...> ..." lines).
func parseLinks(out string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		name, _, _ = strings.Cut(name, "@")
		if ours(name) {
			names = append(names, name)
		}
	}
	return names
}

// iptablesDeletes turns the rules in `iptables -S CHAIN` output that carry
// RuleComment into the argument lists that delete them.
func iptablesDeletes(out string) [][]string {
	var dels [][]string
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, RuleComment) {
			continue
		}
		args := strings.Fields(line)
		args[0] = "-D"
		for i := range args {
			args[i] = strings.Trim(args[i], `"`)
		}
		dels = append(dels, args)
	}
	return dels
}

// CleanupNetns removes every namespace (killing what runs in it), link and
// iptables rule of this package, from this run or a crashed one. It is
// idempotent and keeps going after errors, returning the first.
func CleanupNetns(ctx context.Context, log *slog.Logger) error {
	r := runner{log: log}
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if out, err := r.run(ctx, "ip", "netns", "list"); err == nil {
		for _, ns := range parseNetns(out) {
			killNetnsPids(ctx, r, ns)
			_, err := r.run(ctx, "ip", "netns", "del", ns)
			keep(err)
			log.Debug("removed network namespace", "netns", ns)
		}
	}
	if out, err := r.run(ctx, "ip", "-o", "link", "show"); err == nil {
		for _, l := range parseLinks(out) {
			// Deleting a namespace removes its veth peer asynchronously;
			// a link that is already gone is fine.
			if _, err := r.run(ctx, "ip", "link", "del", l); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
				keep(err)
			}
		}
	}
	if _, err := os.Stat("/proc/net/ip_tables_names"); err == nil || commandExists("iptables") {
		for range 10 { // each pass deletes what it saw; rules may be duplicated
			out, err := r.run(ctx, "iptables", "-S", "FORWARD")
			if err != nil {
				break
			}
			dels := iptablesDeletes(out)
			if len(dels) == 0 {
				break
			}
			for _, d := range dels {
				_, err := r.run(ctx, "iptables", d...)
				keep(err)
			}
		}
	}
	return first
}

func killNetnsPids(ctx context.Context, r runner, ns string) {
	out, err := r.run(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(out) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// CleanupDocker removes this package's containers, networks and volumes.
func CleanupDocker(ctx context.Context, log *slog.Logger) error {
	r := runner{log: log}
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	list := func(args ...string) []string {
		out, err := r.run(ctx, "docker", args...)
		if err != nil {
			keep(err)
			return nil
		}
		var names []string
		for _, n := range strings.Fields(out) {
			if ours(n) {
				names = append(names, n)
			}
		}
		return names
	}
	if cs := list("ps", "-a", "--format", "{{.Names}}"); len(cs) > 0 {
		_, err := r.run(ctx, "docker", append([]string{"rm", "-f", "-v"}, cs...)...)
		keep(err)
		log.Debug("removed containers", "containers", cs)
	}
	for _, n := range list("network", "ls", "--format", "{{.Name}}") {
		_, err := r.run(ctx, "docker", "network", "rm", n)
		keep(err)
	}
	if vs := list("volume", "ls", "--format", "{{.Name}}"); len(vs) > 0 {
		_, err := r.run(ctx, "docker", append([]string{"volume", "rm", "-f"}, vs...)...)
		keep(err)
	}
	return first
}

// TempDirPattern is the pattern of the data directories of a run.
const TempDirPattern = Prefix + "-jepsen-*"

// CleanupTempDirs removes data directories left by earlier runs, except
// keep.
func CleanupTempDirs(log *slog.Logger, keep string) {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), TempDirPattern))
	for _, m := range matches {
		if m == keep {
			continue
		}
		if err := os.RemoveAll(m); err == nil {
			log.Info("removed leftover data directory", "dir", m)
		}
	}
}
