package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// documentedRuns returns the arguments of every `go run . ...` command in
// the fenced code blocks of a Markdown file (after an optional `cd bench
// &&`, with `\` continuations joined and `#` comments cut), except `go run
// . report DIR`.
func documentedRuns(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var runs [][]string
	inBlock := false
	var cont string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock, cont = !inBlock, ""
			continue
		}
		if !inBlock {
			continue
		}
		line = cont + line
		if c, ok := strings.CutSuffix(strings.TrimRight(line, " "), "\\"); ok {
			cont = c + " "
			continue
		}
		cont = ""
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "cd bench &&"))
		args, ok := strings.CutPrefix(line, "go run .")
		if !ok {
			continue
		}
		f := strings.Fields(args)
		if len(f) > 0 && f[0] == "report" {
			continue
		}
		runs = append(runs, f)
	}
	return runs
}

// Every bench command shown in the docs is one the bench accepts (its
// flags parse and validate; nothing runs).
func TestDocumentedCommandsParse(t *testing.T) {
	for _, path := range []string{"README.md", "../docs/benchmarks.md"} {
		runs := documentedRuns(t, path)
		if len(runs) == 0 {
			t.Errorf("%s: no `go run .` command found", path)
		}
		for _, args := range runs {
			if _, err := parseFlags(args, io.Discard); err != nil {
				t.Errorf("%s: go run . %s: %v", path, strings.Join(args, " "), err)
			}
		}
	}
}

func TestDocumentedRunsExtraction(t *testing.T) {
	md := "text `go run . --nope`\n```sh\ncd bench && go run . --rounds 3 \\\n  --quick # smoke\ngo run . report results/x\necho go run .\n```\n"
	path := t.TempDir() + "/x.md"
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := documentedRuns(t, path)
	if len(runs) != 1 || strings.Join(runs[0], " ") != "--rounds 3 --quick" {
		t.Errorf("documentedRuns = %q, want only [--rounds 3 --quick]", runs)
	}
}
