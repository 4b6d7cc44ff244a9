package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// pinRev turns a moving name into the commit it names now.
func TestPinRev(t *testing.T) {
	repo := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=b", "-c", "user.email=b@example.com"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("commit", "-q", "--allow-empty", "-m", "one")
	first := git("rev-parse", "HEAD")
	git("tag", "v1")
	git("commit", "-q", "--allow-empty", "-m", "two")
	ctx := context.Background()
	for rev, want := range map[string]string{"v1": first, "HEAD~1": first, "HEAD": git("rev-parse", "HEAD"), revWorktree: revWorktree} {
		if got, err := pinRev(ctx, repo, rev, "--base-rev"); err != nil || got != want {
			t.Errorf("pinRev(%q) = %q, %v; want %q", rev, got, err, want)
		}
	}
	if _, err := pinRev(ctx, repo, "no-such-tag", "--base-rev"); err == nil || !strings.Contains(err.Error(), `--base-rev: "no-such-tag" is not a commit`) {
		t.Errorf("pinRev(no-such-tag): err = %v, want one naming --base-rev", err)
	}
	if got := gitDescribe(repo, first); got != first[:12] {
		t.Errorf("gitDescribe(%s) = %q, want %q", first, got, first[:12])
	}
}
