package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// runMain runs the whole program as main does and returns its exit status
// and what it wrote to stdout and stderr.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = NewMain(&out, &errb).Main(ctx, args)
	return code, out.String(), errb.String()
}

// TestHelpGoesToStdout: --help, -h and `help [command]` print the usage on
// stdout and exit 0, so `optoutctl --help | less` works.
func TestHelpGoesToStdout(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "optoutctl <command> [flags] [args]"},
		{[]string{"-h"}, "SUBCOMMANDS"},
		{[]string{"help"}, "snapshot    back up the cluster"},
		{[]string{"help", "set"}, "optoutctl set SUBJECT PURPOSE opted_out|opted_in"},
		{[]string{"help", "purpose", "define"}, "optoutctl purpose define NAME allow|deny"},
		{[]string{"set", "--help"}, "-expected-version"},
		{[]string{"check", "u1", "-h"}, "optoutctl check SUBJECT PURPOSE"},
		{[]string{"members", "remove", "--help"}, "optoutctl members remove ID"},
	} {
		code, out, errOut := runMain(t, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) || errOut != "" {
			t.Errorf("optoutctl %s: exit %d, stdout %q, stderr %q; want exit 0 and %q on stdout only",
				strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
		if strings.Count(out, "USAGE") != 1 {
			t.Errorf("optoutctl %s printed the usage %d times", strings.Join(tc.args, " "), strings.Count(out, "USAGE"))
		}
	}
	code, out, errOut := runMain(t, "help", "nosuch")
	if code != 2 || out != "" || !strings.Contains(errOut, `unknown command "nosuch"`) {
		t.Errorf("help nosuch: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestBadFlagPrintsOneErrorAndTheUsageOnce: a mistake on the command line
// is one error line, then the usage of that command, on stderr, exit 2.
func TestBadFlagPrintsOneErrorAndTheUsageOnce(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		err, usage  string
		printsUsage bool
	}{
		{[]string{"check", "--bogus", "u1", "p"}, "flag provided but not defined: -bogus", "optoutctl check SUBJECT PURPOSE", true},
		{[]string{"set", "u1", "p", "out", "--bogus"}, "flag provided but not defined: -bogus", "optoutctl set SUBJECT", true},
		{[]string{"--bogus", "status"}, "flag provided but not defined: -bogus", "optoutctl <command>", true},
		{[]string{"check", "u1"}, "usage: optoutctl check SUBJECT PURPOSE (got 1 arguments)", "optoutctl check SUBJECT PURPOSE", true},
		{[]string{"status", "--timeout", "soon"}, `invalid value "soon" for flag -timeout`, "optoutctl status", true},
		{[]string{"purpose", "defne", "x", "deny"}, `unknown command "defne"`, "optoutctl purpose <define|list|get>", true},
		{[]string{"chek", "u1", "p"}, `unknown command "chek": want one of set, check,`, "did you mean 'optoutctl check'?", false},
	} {
		code, out, errOut := runMain(t, tc.args...)
		name := strings.Join(tc.args, " ")
		if code != 2 || out != "" {
			t.Errorf("optoutctl %s: exit %d, stdout %q; want exit 2 and nothing on stdout", name, code, out)
		}
		if strings.Count(errOut, tc.err) != 1 || !strings.HasPrefix(errOut, "optoutctl: ") {
			t.Errorf("optoutctl %s: stderr %q, want %q once, first", name, errOut, tc.err)
		}
		if !strings.Contains(errOut, tc.usage) {
			t.Errorf("optoutctl %s: stderr %q lacks %q", name, errOut, tc.usage)
		}
		if n := strings.Count(errOut, "USAGE"); tc.printsUsage && n != 1 || !tc.printsUsage && n != 0 {
			t.Errorf("optoutctl %s printed the usage %d times:\n%s", name, n, errOut)
		}
	}
}

// TestGlobalFlagsAfterTheCommand: --endpoints, --timeout and -o work after
// the command and its arguments, as people type them.
func TestGlobalFlagsAfterTheCommand(t *testing.T) {
	store := &fakeStore{set: func(r optoutd.SetRequest) (optoutd.Record, error) {
		return optoutd.Record{Key: r.Key, State: r.State, Version: 9, Source: r.Source}, nil
	}}
	ep := serve(t, store)
	t.Setenv("OPTOUT_ENDPOINTS", "127.0.0.1:1") // the flag must win over this
	code, out, errOut := runMain(t, "set", "u1", "email_marketing", "out", "--endpoints", ep, "--timeout", "3s", "-o", "json")
	if code != 0 || errOut != "" || !strings.HasPrefix(out, `{"version":"9",`) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runMain(t, "set", "--endpoints", ep, "u1", "email_marketing", "out", "--output", "table")
	if code != 0 || !strings.Contains(out, "record.state") || !strings.Contains(out, "STATE_OPTED_OUT") {
		t.Fatalf("set -o table after the arguments: exit %d, stdout %q", code, out)
	}
}

// TestOutputFormats: one result in each format. json is compact, one
// object per line, and stable (encoding/json's, not protojson's randomised
// spacing); pretty is the same JSON indented by two spaces; table has a
// row per field and a table per list.
func TestOutputFormats(t *testing.T) {
	st := &optoutv1.StatusResponse{NodeId: "n1", LeaderId: "n2", Term: 4, Nodes: []*optoutv1.Node{
		{Id: "n1", RaftAddress: "127.0.0.1:7101", ApiAddress: "127.0.0.1:7001", Voter: true},
		{Id: "n2", RaftAddress: "127.0.0.1:7102", ApiAddress: "127.0.0.1:7002", Voter: true, Leader: true},
	}}
	format := func(f string) string {
		var b bytes.Buffer
		if err := writeValue(&b, st, f); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	js := format(outJSON)
	if strings.Count(js, "\n") != 1 || !strings.HasSuffix(js, "}\n") {
		t.Fatalf("json is not one line: %q", js)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(js)); err != nil {
		t.Fatal(err)
	}
	if compact.String() != strings.TrimSuffix(js, "\n") {
		t.Errorf("json is not compact:\n got %s\nwant %s", js, compact.String())
	}
	if !strings.HasPrefix(js, `{"nodeId":"n1","leaderId":"n2","term":"4",`) {
		t.Errorf("json lost the proto field order or names: %s", js)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, compact.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	if pretty := format(outPretty); pretty != indented.String()+"\n" {
		t.Errorf("pretty:\n got %s\nwant %s", pretty, indented.String())
	}
	if !strings.Contains(format(outPretty), "\n  \"leaderId\": \"n2\",\n") {
		t.Errorf("pretty does not put one space after a colon: %s", format(outPretty))
	}
	table := format(outTable)
	for _, want := range []string{
		"nodeId", "n1", "leaderId", "n2",
		"nodes:\n",
		"ID  RAFT_ADDRESS    API_ADDRESS     VOTER  LEADER",
		"n2  127.0.0.1:7102  127.0.0.1:7002  true   true",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// A snapshot header, a plain Go value, goes through the same layer.
	var b bytes.Buffer
	if err := writeValue(&b, snapshotInfo{File: "b.snap", AppliedIndex: 12, Checksum: "ok"}, outJSON); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), `{"file":"b.snap","sizeBytes":0,"formatVersion":0,"appliedIndex":12,`) {
		t.Errorf("snapshot info as json: %s", b.String())
	}
}

// TestUnreachableClusterNamesEveryEndpoint: when no endpoint answers, the
// error lists each one with its failure and says how to point optoutctl
// at the cluster.
func TestUnreachableClusterNamesEveryEndpoint(t *testing.T) {
	var dead []string
	for i := 0; i < 2; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead = append(dead, ln.Addr().String())
		ln.Close()
	}
	code, out, errOut := runMain(t, "--endpoints", strings.Join(dead, ","), "check", "u1", "email_marketing")
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{
		"cannot reach the cluster: no endpoint answered (2 tried)",
		"http://" + dead[0] + ": unavailable: dial tcp " + dead[0] + ": connect: connection refused",
		"http://" + dead[1] + ": unavailable: dial tcp " + dead[1],
		"--endpoints", "OPTOUT_ENDPOINTS",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

// TestDefaultEndpointsAreDevPorts: the README's optoutctl examples rely on
// the default --endpoints being where `optoutd dev` listens by default.
func TestDefaultEndpointsAreDevPorts(t *testing.T) {
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	t.Setenv("OPTOUT_ENDPOINTS", "")
	if err := m.ParseFlags([]string{"status"}); err != nil {
		t.Fatal(err)
	}
	if m.endpoints != "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003" {
		t.Errorf("default --endpoints %q are not optoutd dev's default API ports", m.endpoints)
	}
}

// TestStreamOutput: a stream (watch) prints one compact JSON object per
// line by default, and with -o table a header once and a row per item.
func TestStreamOutput(t *testing.T) {
	changes := []*optoutv1.AuditEntry{
		{Version: 7, SubjectId: "u4", Purpose: "loyalty_emails", NewState: optoutv1.State_STATE_OPTED_IN},
		{Version: 9, SubjectId: "u4", Purpose: "loyalty_emails", NewState: optoutv1.State_STATE_OPTED_OUT},
	}
	emit := func(format string) []string {
		var b bytes.Buffer
		s := &stream{m: &Main{Stdout: &b, output: format}}
		for _, c := range changes {
			if err := s.emit(c); err != nil {
				t.Fatal(err)
			}
		}
		return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	}
	lines := emit("")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `{"version":"7",`) || !strings.Contains(lines[1], `"newState":"STATE_OPTED_OUT"`) {
		t.Errorf("default stream output: %q", lines)
	}
	rows := emit(outTable)
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "VERSION\t") || !strings.Contains(rows[0], "NEW_STATE") ||
		!strings.HasPrefix(rows[1], "7\t") || !strings.Contains(rows[2], "STATE_OPTED_OUT") {
		t.Errorf("table stream output: %q", rows)
	}
}
