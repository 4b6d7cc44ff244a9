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
)

// opsSections are the docs/operations.md sections run, in order, as one
// shell session: each ```sh block as written.
var opsSections = []string{
	"Run a cluster of processes",
	"Scale up and down",
	"Rolling restart and upgrade order",
	"TLS and tokens",
	"Metrics and alerts",
}

// statement is one shell statement of a block and what its output must
// contain ("" when the guide states nothing).
type statement struct {
	text, expect string
	fails        bool
}

// splitStatements groups a block's lines into statements: "\\"
// continuations and for ... done loops stay together; "# expect:" and
// "# expect failure:" lines attach to the statement before them.
func splitStatements(block string) []statement {
	var out []statement
	var cur []string
	depth := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, statement{text: strings.Join(cur, "\n")})
			cur = nil
		}
	}
	for _, line := range strings.Split(block, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "# expect failure:"):
			flush()
			out[len(out)-1].expect = strings.TrimSpace(strings.TrimPrefix(t, "# expect failure:"))
			out[len(out)-1].fails = true
			continue
		case strings.HasPrefix(t, "# expect:"):
			flush()
			out[len(out)-1].expect = strings.TrimSpace(strings.TrimPrefix(t, "# expect:"))
			continue
		case t == "" || strings.HasPrefix(t, "#"):
			continue
		}
		cur = append(cur, line)
		loop := strings.HasPrefix(t, "for ") || strings.HasPrefix(t, "while ") || strings.HasPrefix(t, "until ")
		if loop && !strings.HasSuffix(t, "done") { // a one-line loop opens and closes
			depth++
		}
		if depth > 0 && (t == "done" || strings.HasPrefix(t, "done ")) {
			depth--
		}
		if depth == 0 && !strings.HasSuffix(line, "\\") {
			flush()
		}
	}
	flush()
	return out
}

// script turns the statements into one bash script that stops at the
// first statement whose exit status or output is not what the guide says.
func script(stmts []statement, dir string) (string, error) {
	var b strings.Builder
	b.WriteString("set -u\nnorm() { tr -d ' \\t\\n'; }\n")
	fmt.Fprintf(&b, "GUIDE_LOG=%q\n", filepath.Join(dir, "nodes.log"))
	for i, s := range stmts {
		exp := filepath.Join(dir, fmt.Sprintf("expect-%d", i))
		if err := os.WriteFile(exp, []byte(s.expect), 0o600); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "echo '>>> statement %d'\n", i)
		if strings.HasSuffix(strings.TrimSpace(s.text), "&") || strings.Contains(s.text, "&\ndone") {
			// Starts background nodes: their output goes to a log file, so
			// they do not hold this session's output open.
			fmt.Fprintf(&b, "{ %s\n} >>\"$GUIDE_LOG\" 2>&1\n", s.text)
			continue
		}
		if s.expect == "" && !s.fails {
			// Run in this shell (an export must last), output to the log.
			fmt.Fprintf(&b, "{ %s\n} >>\"$GUIDE_LOG\" 2>&1 || { echo 'GUIDE FAILED: statement %d exited '$?; exit 1; }\n", s.text, i)
			continue
		}
		fmt.Fprintf(&b, "out=$( { %s\n} 2>&1 ); rc=$?\nprintf '%%s\\n' \"$out\"\n", s.text)
		if s.fails {
			fmt.Fprintf(&b, "[ $rc -ne 0 ] || { echo 'GUIDE FAILED: statement %d succeeded but the guide says it fails'; exit 1; }\n", i)
		} else {
			fmt.Fprintf(&b, "[ $rc -eq 0 ] || { echo 'GUIDE FAILED: statement %d exited '$rc; exit 1; }\n", i)
		}
		if s.expect != "" {
			fmt.Fprintf(&b, "case \"$(printf '%%s' \"$out\" | norm)\" in *\"$(norm < %q)\"*) ;; *) echo 'GUIDE FAILED: statement %d output lacks the expected text'; exit 1;; esac\n", exp, i)
		}
	}
	b.WriteString("echo GUIDE OK\n")
	return b.String(), nil
}

// opsPortsLine is the guide's first line: the ports, as variables, so the
// guide runs beside another cluster by changing one line. The test does
// exactly that.
const opsPortsLine = "API=7000 RAFT=7100"

// TestOperationsGuide runs docs/operations.md's process-cluster sections as
// one shell session from the repository root, with the guide's port line
// set to free ports and TMPDIR (so the guide's scratch directory) in a
// temporary directory: it passes beside a running `optoutd dev`, and
// leaves nothing in the checkout.
func TestOperationsGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the operations guide as processes; skipped with -short")
	}
	for _, tool := range []string{"curl", "base64", "mktemp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the operations guide needs %s", tool)
		}
	}
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := blocksOf(string(b))
	var stmts []statement
	for _, sec := range opsSections {
		if len(blocks[sec]) == 0 {
			t.Fatalf("docs/operations.md has no shell block under %q", sec)
		}
		for _, blk := range blocks[sec] {
			stmts = append(stmts, splitStatements(blk)...)
		}
	}
	if len(stmts) == 0 || stmts[0].text != opsPortsLine {
		t.Fatalf("the guide's first statement must be %q (the ports, which this test moves), got %q", opsPortsLine, stmts[0].text)
	}
	ports := freeDocPorts(t, 4)
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
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TMPDIR="+scratch)
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
	// The guide leaves nodes running in the background, in the script's
	// process group (a non-interactive shell has no job control): stop
	// that group, which holds nothing this test did not start.
	stopGroup(cmd.Process.Pid)
	if err != nil || !strings.Contains(out.String(), "GUIDE OK") {
		logs, _ := os.ReadFile(filepath.Join(tmp, "nodes.log"))
		t.Fatalf("operations guide: %v\n%s\n--- node logs (tail) ---\n%s", err, tail(out.String(), 6000), tail(string(logs), 4000))
	}
	t.Logf("ran %d statements of docs/operations.md", len(stmts))
}

// stopGroup sends SIGTERM to process group pgid, waits up to 20s for it to
// empty, then sends SIGKILL.
func stopGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(-pgid, 0); err != nil {
			return // no process left in the group
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// blocksOf returns the ```sh blocks of a Markdown text by "## " section.
func blocksOf(md string) map[string][]string {
	out := map[string][]string{}
	section, in := "", false
	var cur []string
	for _, line := range strings.Split(md, "\n") {
		switch {
		case !in && strings.HasPrefix(line, "## "):
			section = strings.TrimSpace(strings.TrimPrefix(line, "## "))
		case line == "```sh":
			in, cur = true, nil
		case line == "```" && in:
			in = false
			out[section] = append(out[section], strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	return out
}
