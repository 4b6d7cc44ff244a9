package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

func requireFreePorts(t *testing.T, ports ...int) {
	t.Helper()
	for _, p := range ports {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("the README's examples use port %d, which is busy: %v", p, err)
		}
		_ = ln.Close()
	}
}

func runShell(t *testing.T, c readmeCommand) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", c.cmd)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil && !c.fails {
		t.Fatalf("README (%s): %s\nfailed: %v\n%s", c.section, c.cmd, err, out)
	}
	if err == nil && c.fails {
		t.Fatalf("README (%s): %s\nsucceeded, but the README says it fails:\n%s", c.section, c.cmd, out)
	}
	if c.expect == "" {
		t.Fatalf("README (%s): %s has no '# expect:' line", c.section, c.cmd)
	}
	// protojson varies its whitespace on purpose; compare without it.
	if !strings.Contains(noSpace(string(out)), noSpace(c.expect)) {
		t.Fatalf("README (%s): %s\noutput lacks %q:\n%s", c.section, c.cmd, c.expect, out)
	}
}

// TestREADMEExamples runs every example of README.md's "Use it" section
// against `optoutd dev` on the documented ports, and the "Run three separate
// processes" recipe as written.
func TestREADMEExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs optoutd dev on fixed ports; skipped with -short")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README's examples need curl")
	}
	blocks := readmeBlocks(t)
	t.Run("dev", func(t *testing.T) {
		requireFreePorts(t, 7001, 7002, 7003, 7101, 7102, 7103)
		ready := make(chan struct{})
		m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
		m.Ready = func() { close(ready) }
		if err := m.ParseFlags([]string{"dev"}); err != nil {
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
			t.Fatalf("optoutd dev stopped: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("optoutd dev not ready after 60s")
		}
		n := 0
		for _, section := range []string{"Use it", "Purposes, deny wins, watch and audit"} {
			for _, b := range blocks[section] {
				for _, c := range commands(section, b) {
					runShell(t, c)
					n++
				}
			}
		}
		if n < 21 {
			t.Fatalf("found only %d commands in the README sections it runs", n)
		}
	})
	t.Run("three processes", func(t *testing.T) {
		requireFreePorts(t, 7001, 7002, 7003, 7101, 7102, 7103)
		root := repoRoot(t)
		for _, d := range []string{"data", "bin"} {
			if _, err := os.Stat(filepath.Join(root, d)); err == nil && d == "data" {
				t.Fatalf("%s/data exists; the recipe would reuse it", root)
			}
		}
		t.Cleanup(func() { _ = os.RemoveAll(filepath.Join(root, "data")) })
		recipe := blocks["Run three separate processes"]
		if len(recipe) != 1 {
			t.Fatalf("want one block in 'Run three separate processes', got %d", len(recipe))
		}
		// Run the block as written; the nodes are its background jobs, so
		// give the shell its own process group and kill the group at the end.
		cmd := exec.Command("bash", "-c", recipe[0]+"\nwait")
		cmd.Dir = root
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			_ = cmd.Wait()
		})
		deadline := time.Now().Add(90 * time.Second)
		for _, port := range []int{7001, 7002, 7003} {
			for {
				resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
				if err == nil {
					_ = resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("node on %d not ready: %v\n%s", port, errors.Join(err), out.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		runShell(t, readmeCommand{section: "three processes", cmd: "go run ./cmd/optoutctl status", expect: `"leaderId": "n`})
	})
}

func noSpace(s string) string { return strings.Join(strings.Fields(s), "") }
