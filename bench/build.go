package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildOptoutd builds cmd/optoutd with the product's own go.mod into a temp
// dir that the returned func removes. rev "worktree" builds the working
// tree as it is; any other rev is exported with git archive first, so
// concurrent edits in the working tree do not leak into the measurement.
// flagName names the flag that chose rev, for errors.
func buildOptoutd(ctx context.Context, repo, rev, flagName string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "optoutd-bench-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	src := repo
	if rev != revWorktree {
		src = filepath.Join(dir, "src")
		if err := os.Mkdir(src, 0o755); err != nil {
			cleanup()
			return "", nil, err
		}
		sh := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", repo, rev, src)
		if out, err := sh.CombinedOutput(); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("%s: git archive %s: %w\n%s", flagName, rev, err, out)
		}
	}
	bin := filepath.Join(dir, "optoutd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/optoutd")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("%s: go build ./cmd/optoutd at %s: %w\n%s", flagName, rev, err, out)
	}
	return bin, cleanup, nil
}

// pinRev resolves rev to the full hash of its commit, once, so that the
// build and the report name the same commit even when the branch moves
// meanwhile (others commit to this repository during runs). "worktree"
// stays as it is.
func pinRev(ctx context.Context, repo, rev, flagName string) (string, error) {
	if rev == revWorktree {
		return rev, nil
	}
	out, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "--verify", "--quiet", rev+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("%s: %q is not a commit of %s: %w", flagName, rev, repo, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// gitDescribe names the optoutd commit measured; for the working tree it
// adds +dirty when product files differ from HEAD.
func gitDescribe(repo, rev string) string {
	r := rev
	if rev == revWorktree {
		r = "HEAD"
	}
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short=12", r+"^{commit}").Output()
	if err != nil {
		return rev
	}
	desc := strings.TrimSpace(string(out))
	if rev != revWorktree {
		return desc
	}
	st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--", ".", ":!bench", ":!docs").Output()
	if err == nil && len(strings.TrimSpace(string(st))) > 0 {
		desc += "+dirty (working tree)"
	}
	return desc
}
