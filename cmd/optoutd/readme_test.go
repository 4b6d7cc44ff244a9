package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readmeCommand is one shell command from a ```sh block of README.md and
// the text its output must contain (from the "# expect:" line after it, or
// "# expect failure:" when the command must exit non-zero).
type readmeCommand struct {
	section, cmd, expect string
	fails                bool
}

// readmeBlocks returns the ```sh blocks of README.md, by section heading.
func readmeBlocks(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section, in := "", false
	var cur []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#") && !in:
			section = strings.TrimSpace(strings.TrimLeft(line, "#"))
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

// commands splits a block into commands (joining "\" continuations), each
// with its "# expect:" line.
func commands(section, block string) []readmeCommand {
	var out []readmeCommand
	var cur string
	for _, line := range strings.Split(block, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "# expect:"):
			if len(out) > 0 {
				out[len(out)-1].expect = strings.TrimSpace(strings.TrimPrefix(trimmed, "# expect:"))
			}
		case strings.HasPrefix(trimmed, "# expect failure:"):
			if len(out) > 0 {
				out[len(out)-1].expect = strings.TrimSpace(strings.TrimPrefix(trimmed, "# expect failure:"))
				out[len(out)-1].fails = true
			}
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		case strings.HasSuffix(line, "\\"):
			cur += strings.TrimSuffix(line, "\\") + " "
		default:
			out = append(out, readmeCommand{section: section, cmd: cur + line})
			cur = ""
		}
	}
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

// shell says where and how a documented command runs: the directory, extra
// environment, and a rewrite of the command (ports, paths, binaries).
type shell struct {
	dir     string
	env     []string
	rewrite func(string) string
}

func runShell(t *testing.T, c readmeCommand, sh shell) {
	t.Helper()
	if c.expect == "" {
		t.Fatalf("README (%s): %s has no '# expect:' line", c.section, c.cmd)
	}
	text := c.cmd
	if sh.rewrite != nil {
		text = sh.rewrite(text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", text)
	cmd.Dir = sh.dir
	cmd.Env = append(os.Environ(), sh.env...)
	out, err := cmd.CombinedOutput()
	if err != nil && !c.fails {
		t.Fatalf("README (%s): %s\nran as: %s\nfailed: %v\n%s", c.section, c.cmd, text, err, out)
	}
	if err == nil && c.fails {
		t.Fatalf("README (%s): %s\nran as: %s\nsucceeded, but the README says it fails:\n%s", c.section, c.cmd, text, out)
	}
	if !strings.Contains(string(out), c.expect) {
		t.Fatalf("README (%s): %s\nran as: %s\noutput lacks %q:\n%s", c.section, c.cmd, text, c.expect, out)
	}
}

// devSections are the README sections run against `optoutd dev`.
var devSections = []string{"Use it", "Purposes, deny wins, watch and audit"}

// runDevSections runs the README's examples against a dev cluster on
// ports, with optoutctl as `go run` (ctl == "") or a built binary.
func runDevSections(t *testing.T, blocks map[string][]string, ports docPorts, ctl string) {
	t.Helper()
	sh := shell{
		dir: repoRoot(t),
		// The README relies on optoutctl's default --endpoints, which are
		// dev's default ports; here the cluster is elsewhere.
		env: []string{"OPTOUT_ENDPOINTS=" + ports.endpoints(devNodes)},
		rewrite: func(s string) string {
			s = ports.rewrite(s)
			if ctl != "" {
				s = strings.ReplaceAll(s, "go run ./cmd/optoutctl", ctl)
			}
			return s
		},
	}
	n := 0
	for _, section := range devSections {
		for _, b := range blocks[section] {
			for _, c := range commands(section, b) {
				runShell(t, c, sh)
				n++
			}
		}
	}
	if n < 21 {
		t.Fatalf("found only %d commands in the README sections it runs", n)
	}
}

// waitHTTPReady polls /readyz on the API ports of nodes 1..n.
func waitHTTPReady(t *testing.T, ports docPorts, n int, timeout time.Duration, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for i := 1; i <= n; i++ {
		for {
			resp, err := http.Get("http://127.0.0.1:" + ports.apiPort(i) + "/readyz")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("node on %s not ready after %v: %v\n%s", ports.apiPort(i), timeout, err, logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestREADMEExamples runs every example of README.md's "Use it" and
// "Purposes" sections against `optoutd dev`, twice: in-process with
// optoutctl as `go run`, and as built binaries (protojson's output differs
// between builds; the expect lines must hold for both). Then it runs the
// "Run three separate processes" recipe and its stop command. Everything
// runs on free ports and writes only into temporary directories, so the
// test passes beside a running `optoutd dev` and leaves the checkout as it
// was.
func TestREADMEExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs optoutd dev and three processes; skipped with -short")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README's examples need curl")
	}
	blocks := readmeBlocks(t)
	t.Run("dev, go run", func(t *testing.T) {
		ports := freeDocPorts(t, devNodes)
		ready := make(chan struct{})
		var stdout, stderr bytes.Buffer
		m := NewMain(&stdout, &stderr)
		m.Ready = func() { close(ready) }
		if err := m.ParseFlags([]string{"dev", "--api-port", ports.apiPort(1), "--raft-port", ports.raftPort(1)}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("optoutd dev exited with %v", err)
			}
		}()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("optoutd dev stopped: %v\n%s", err, stderr.String())
		case <-time.After(60 * time.Second):
			t.Fatal("optoutd dev not ready after 60s")
		}
		runDevSections(t, blocks, ports, "")
	})
	t.Run("dev, built binaries", func(t *testing.T) {
		bin, ctl := binary(t), ctlBinary(t)
		ports := freeDocPorts(t, devNodes)
		cmd := exec.Command(bin, "dev", "--api-port", ports.apiPort(1), "--raft-port", ports.raftPort(1))
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		stopped := false
		t.Cleanup(func() {
			if !stopped {
				_ = cmd.Process.Kill()
				t.Logf("optoutd dev, killed: %v", <-done)
			}
		})
		waitHTTPReady(t, ports, devNodes, 60*time.Second, out.String)
		runDevSections(t, blocks, ports, ctl)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			stopped = true
			if err != nil {
				t.Fatalf("optoutd dev exited with %v after SIGTERM\n%s", err, out.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("optoutd dev still running 30s after SIGTERM\n%s", out.String())
		}
		if !strings.Contains(out.String(), "optoutd dev: stopping") {
			t.Errorf("optoutd dev did not say it stopped:\n%s", out.String())
		}
	})
	t.Run("three processes", func(t *testing.T) {
		testThreeProcesses(t, blocks)
	})
}

// testThreeProcesses runs the README's "Run three separate processes"
// blocks in one shell, fed on its standard input as a user would type them:
// the start recipe, then (once every node is ready) the stop command. The
// recipe's bin/ and data/ go to a temporary directory, its ports to free
// ones.
func testThreeProcesses(t *testing.T, blocks map[string][]string) {
	recipe := blocks["Run three separate processes"]
	if len(recipe) != 2 {
		t.Fatalf("want two blocks in 'Run three separate processes' (start, stop), got %d", len(recipe))
	}
	root, work := repoRoot(t), t.TempDir()
	ports := freeDocPorts(t, 3)
	rewrite := func(s string) string {
		s = ports.rewrite(s)
		return strings.NewReplacer(" bin/", " "+work+"/bin/", "\tbin/", "\t"+work+"/bin/", "\nbin/", "\n"+work+"/bin/",
			" data/", " "+work+"/data/").Replace("\n" + s)
	}
	for _, blk := range recipe {
		if r := rewrite(blk); strings.Contains(r, " bin/") || strings.Contains(r, " data/") || strings.Contains(r, ":710") {
			t.Fatalf("rewrite left a checkout path or documented port in:\n%s", r)
		}
	}
	cmd := exec.Command("bash")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TMPDIR="+work)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	t.Cleanup(func() {
		if !exited {
			// Only this shell's own process group: the nodes it started.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Logf("the README shell, killed: %v", <-done)
		}
	})
	if _, err := io.WriteString(stdin, rewrite(recipe[0])+"\n"); err != nil {
		t.Fatal(err)
	}
	waitHTTPReady(t, ports, 3, 3*time.Minute, out.String)
	runShell(t, readmeCommand{section: "three processes", cmd: "go run ./cmd/optoutctl status", expect: `"leaderId": "n`},
		shell{dir: root, env: []string{"OPTOUT_ENDPOINTS=" + ports.endpoints(3)}})
	if _, err := io.WriteString(stdin, rewrite(recipe[1])+"\nexit $?\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Fatalf("the README's stop command: the shell exited with %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the nodes were still running 60s after the README's stop command\n%s", out.String())
	}
	for i := 1; i <= 3; i++ {
		if _, err := os.Stat(filepath.Join(work, "data", fmt.Sprintf("n%d", i), "raft.db")); err != nil {
			t.Errorf("node n%d wrote no data where the rewritten recipe put it: %v", i, err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a process's output and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
