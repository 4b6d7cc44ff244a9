package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// enforcementGuide is the walkthrough of the enforcement features.
const enforcementGuide = "docs/enforcement.md"

// shellBlocks returns the ```sh blocks of a Markdown text in the order
// they appear (blocksOf groups them by section, which loses the order).
func shellBlocks(md string) []string {
	var out, cur []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		switch {
		case line == "```sh":
			in, cur = true, nil
		case line == "```" && in:
			in = false
			out = append(out, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	return out
}

func readGuide(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), enforcementGuide))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEnforcementGuide runs every shell block of docs/enforcement.md, in
// order, as one shell session from the repository root, as
// TestOperationsGuide runs the operations guide: the guide builds
// optoutd and optoutctl, starts `optoutd dev` in the background, walks
// through the four failures, and stops the cluster by its PID. Each
// "# expect:" line must be in its statement's output (whitespace aside),
// and "# expect failure:" statements must fail. The guide's port line is
// set to free ports and TMPDIR to a temporary directory, so it passes
// beside a running `optoutd dev` and leaves nothing behind.
func TestEnforcementGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the enforcement guide against optoutd dev; skipped with -short")
	}
	for _, tool := range []string{"curl", "jq", "mktemp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the enforcement guide needs %s", tool)
		}
	}
	var stmts []statement
	for _, blk := range shellBlocks(readGuide(t)) {
		stmts = append(stmts, splitStatements(blk)...)
	}
	if len(stmts) < 50 {
		t.Fatalf("%s has only %d shell statements: a block went missing or lost its ```sh fence", enforcementGuide, len(stmts))
	}
	if stmts[0].text != opsPortsLine {
		t.Fatalf("the guide's first statement must be %q (the ports, which this test moves), got %q", opsPortsLine, stmts[0].text)
	}
	if last := stmts[len(stmts)-1].text; last != `rm -rf "$WORK"` {
		t.Fatalf("the guide must end by removing its directory, after stopping the cluster; it ends with %q", last)
	}
	ports := freeDocPorts(t, devNodes)
	stmts[0].text = fmt.Sprintf("API=%s0 RAFT=%s0", ports.api, ports.raft)
	tmp := t.TempDir()
	sh, err := script(stmts, tmp)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(tmp, "guide.sh")
	if err := os.WriteFile(path, []byte(sh), 0o600); err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(tmp, "scratch")
	if err := os.Mkdir(scratch, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", path)
	cmd.Dir = repoRoot(t)
	// OPTOUT_ENDPOINTS from the caller would not matter (the guide sets
	// it), but a stray OPTOUT_TOKEN or OPTOUT_OUTPUT would change answers.
	cmd.Env = append(cleanEnv(), "TMPDIR="+scratch)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(5 * time.Minute):
		err = fmt.Errorf("timed out")
	}
	// optoutd dev runs in the script's process group: if the guide failed
	// before its stop block, stop the group (it holds nothing else).
	stopGroup(cmd.Process.Pid)
	if err != nil || !strings.Contains(out.String(), "GUIDE OK") {
		logs, _ := os.ReadFile(filepath.Join(tmp, "nodes.log"))
		var dev []byte
		if m, _ := filepath.Glob(filepath.Join(scratch, "*", "dev.log")); len(m) > 0 {
			dev, _ = os.ReadFile(m[0])
		}
		t.Fatalf("%s: %v\n%s\n--- log of statements without expect (tail) ---\n%s\n--- optoutd dev (tail) ---\n%s",
			enforcementGuide, err, tail(out.String(), 6000), tail(string(logs), 3000), tail(string(dev), 3000))
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("the guide left %d entries in TMPDIR (its stop block removes $WORK; dev removes its data)", len(left))
	}
	t.Logf("ran %d statements of %s", len(stmts), enforcementGuide)
}

// cleanEnv is the environment without OPTOUT_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OPTOUT_") {
			env = append(env, kv)
		}
	}
	return env
}

// TestEnforcementGuideCoversTheContract: the guide names every violation
// kind, discard reason, receipt status and override state of the wire
// contract and every enforcement metric, and shows the JSON API with curl.
// A new kind or metric without a word in the guide fails here.
func TestEnforcementGuideCoversTheContract(t *testing.T) {
	md := readGuide(t)
	var want []string
	for _, names := range []map[int32]string{
		optoutv1.ViolationKind_name, optoutv1.DiscardReason_name, optoutv1.ReceiptStatus_name, optoutv1.OverrideState_name,
	} {
		for _, n := range names {
			if !strings.HasSuffix(n, "_UNSPECIFIED") {
				want = append(want, n)
			}
		}
	}
	want = append(want, "VIOLATION_KIND_UNSPECIFIED",
		"optoutd_fence_verdicts_total", "optoutd_override_decisions_total", "optoutd_overrides_active",
		"optoutd_overrides_expired_total", "optoutd_service_violation_score", "optoutd_service_reports_24h",
		"optoutd_service_violations_24h", "optoutd_rpc_requests_total", "optoutd_decisions_total",
		"deploy/monitoring/", "client/CACHE.md", "## The linearizable cache",
		"-H 'Content-Type: application/json'", "EnforcementService/VerifyReceipt")
	for _, w := range want {
		if !strings.Contains(md, w) {
			t.Errorf("%s does not mention %s", enforcementGuide, w)
		}
	}
}
