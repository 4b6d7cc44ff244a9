package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadFlagsNameTheFlag: every bad flag fails at start-up with a message
// that names it, before anything listens or touches the disk.
func TestBadFlagsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	base := []string{"server", "--id", "n1", "--data-dir", dir, "--api-addr", "127.0.0.1:7998", "--raft-addr", "127.0.0.1:7999"}
	files := t.TempDir()
	notPEM, shortTok := filepath.Join(files, "ca.pem"), filepath.Join(files, "token")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shortTok, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no id", []string{"server", "--data-dir", dir}, "--id"},
		{"bad id", append(base, "--id", "n 1"), "--id"},
		{"no data dir", []string{"server", "--id", "n1"}, "--data-dir"},
		{"raft addr without port", append(base, "--raft-addr", "localhost"), "--raft-addr"},
		{"raft addr port 0", append(base, "--raft-addr", "127.0.0.1:0"), "--raft-addr"},
		{"api addr garbage", append(base, "--api-addr", "nope"), "--api-addr"},
		{"debug addr garbage", append(base, "--debug-addr", "localhost"), "--debug-addr"},
		{"fsm sync interval too short", append(base, "--fsm-sync-interval", "1ms"), "--fsm-sync-interval"},
		{"fsm sync interval too long", append(base, "--fsm-sync-interval", "61s"), "--fsm-sync-interval: 1m1s is outside 10ms..1m"},
		{"initial cluster syntax", append(base, "--initial-cluster", "n1"), "--initial-cluster"},
		{"initial cluster misses self", append(base, "--initial-cluster", "n2=127.0.0.1:7102"), "--initial-cluster"},
		{"initial cluster wrong self addr", append(base, "--initial-cluster", "n1=127.0.0.1:7101"), "--initial-cluster"},
		{"initial cluster duplicate id", append(base, "--initial-cluster", "n1=127.0.0.1:7999,n1=127.0.0.1:7102"), "--initial-cluster"},
		{"initial cluster shared addr", append(base, "--initial-cluster", "n1=127.0.0.1:7999,n2=127.0.0.1:7999"), "--initial-cluster"},
		{"lease above heartbeat", append(base, "--leader-lease-timeout", "2s"), "--leader-lease-timeout"},
		{"election below heartbeat", append(base, "--election-timeout", "100ms"), "--election-timeout"},
		{"zero request timeout", append(base, "--request-timeout", "0s"), "--request-timeout"},
		{"bad duration", append(base, "--heartbeat-timeout", "soon"), "heartbeat-timeout"},
		{"snapshot threshold 0", append(base, "--snapshot-threshold", "0"), "--snapshot-threshold"},
		{"snapshot threshold overflow", append(base, "--snapshot-threshold", "18446744073709551615"), "--snapshot-threshold: 18446744073709551615 is outside"},
		{"trailing logs huge", append(base, "--trailing-logs", "5000000000"), "--trailing-logs"},
		{"api advertise garbage", append(base, "--api-advertise", "nonsense"), "--api-advertise"},
		{"join timeout huge", append(base, "--join", "127.0.0.1:7001", "--join-timeout", "876000h"), "--join-timeout"},
		{"join ca without join", append(base, "--join-ca-file", "/etc/hostname"), "only meaningful with --join"},
		{"join ca missing", append(base, "--join", "127.0.0.1:7001", "--join-ca-file", dir+"/no-such.pem"), "--join-ca-file"},
		{"join ca not pem", append(base, "--join", "127.0.0.1:7001", "--join-ca-file", notPEM), "--join-ca-file: no PEM certificates"},
		{"join token too short", append(base, "--join", "127.0.0.1:7001", "--join-token-file", shortTok), "--join-token-file: the token must be"},
		{"log level", append(base, "--log-level", "loud"), "--log-level"},
		{"log format", append(base, "--log-format", "xml"), "--log-format"},
		{"stray argument", append(base, "extra"), "unexpected arguments"},
		{"dev port range", []string{"dev", "--api-port", "65535"}, "--api-port"},
		{"no command", []string{}, "missing command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			m := NewMain(&out, &errb)
			err := m.ParseFlags(tc.args)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err = m.Run(ctx)
			}
			if err == nil {
				t.Fatalf("%v: started without error", tc.args)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v: error %q does not name %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestFlagsFromEnvironment: OPTOUT_* variables set flags, and the command
// line wins.
func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("OPTOUT_ID", "env-node")
	t.Setenv("OPTOUT_DATA_DIR", "/from/env")
	t.Setenv("OPTOUT_HEARTBEAT_TIMEOUT", "700ms")
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := m.ParseFlags([]string{"server", "--data-dir", "/from/flag"}); err != nil {
		t.Fatal(err)
	}
	f := m.server
	if f.id != "env-node" || f.dataDir != "/from/flag" || f.heartbeat != 700*time.Millisecond {
		t.Fatalf("flags = id %q data-dir %q heartbeat %v", f.id, f.dataDir, f.heartbeat)
	}

	t.Setenv("OPTOUT_ELECTION_TIMEOUT", "forever")
	m = NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	err := m.ParseFlags([]string{"server"})
	if err == nil || !strings.Contains(err.Error(), "OPTOUT_ELECTION_TIMEOUT") && !strings.Contains(err.Error(), "election-timeout") {
		t.Fatalf("bad env value: %v", err)
	}
}

// runMain runs the program as main does: its exit status, stdout, stderr.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := NewMain(&out, &errb).Main(ctx, args)
	return code, out.String(), errb.String()
}

// TestHelp: --help and `help` print on stdout and exit 0; the top level
// lists every command, and each command that reads the environment says so.
func TestHelp(t *testing.T) {
	code, out, errOut := runMain(t, "--help")
	if code != 0 || errOut != "" {
		t.Fatalf("--help: exit %d, stderr %q", code, errOut)
	}
	for _, c := range []string{"server", "dev", "audit-verify", "healthcheck", "restore", "recover", "help"} {
		if !strings.Contains(out, "\n  "+c+" ") {
			t.Errorf("--help does not list %s:\n%s", c, out)
		}
	}
	for _, args := range [][]string{{"server", "--help"}, {"help", "server"}, {"dev", "-h"}, {"restore", "--help"}, {"recover", "--help"}, {"audit-verify", "-h"}} {
		code, out, errOut := runMain(t, args...)
		if code != 0 || errOut != "" || strings.Count(out, "USAGE") != 1 || !strings.Contains(out, "OPTOUT_<FLAG>") || !strings.Contains(out, "OPTOUT_DATA_DIR") {
			t.Errorf("%v: exit %d, stderr %q, stdout:\n%s\nwant the usage once, on stdout, saying flags read OPTOUT_*", args, code, errOut, out)
		}
	}
}

// TestUsageMistakes: an unknown command suggests the closest one; a bad
// flag prints one error and the command's usage once; both exit 2 and
// print nothing on stdout.
func TestUsageMistakes(t *testing.T) {
	for _, tc := range []struct {
		args             []string
		want, usageOf    string
		wantUsagePrinted bool
	}{
		{[]string{"serve"}, `unknown command "serve": want one of server, dev,`, "did you mean 'optoutd server'?", false},
		{[]string{"restor", "x"}, `unknown command "restor"`, "did you mean 'optoutd restore'?", false},
		{[]string{"server", "--bogus"}, "flag provided but not defined: -bogus", "optoutd server --id n1", true},
		{[]string{"dev", "--api-port", "x"}, `invalid value "x" for flag -api-port`, "optoutd dev [--data-dir D]", true},
		{[]string{}, "missing command", "SUBCOMMANDS", true},
	} {
		code, out, errOut := runMain(t, tc.args...)
		if code != 2 || out != "" {
			t.Errorf("%v: exit %d, stdout %q; want 2 and nothing", tc.args, code, out)
		}
		if strings.Count(errOut, tc.want) != 1 || !strings.Contains(errOut, tc.usageOf) {
			t.Errorf("%v: stderr %q, want %q once and %q", tc.args, errOut, tc.want, tc.usageOf)
		}
		if n := strings.Count(errOut, "USAGE"); tc.wantUsagePrinted && n != 1 || !tc.wantUsagePrinted && n != 0 {
			t.Errorf("%v: the usage is printed %d times:\n%s", tc.args, n, errOut)
		}
	}
}

// TestServerWithoutPeersRefuses: with no state, and neither
// --initial-cluster nor --join, the node cannot ever find a cluster; it
// refuses to start, says what to pass, and creates nothing.
func TestServerWithoutPeersRefuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n1")
	code, _, errOut := runMain(t, "server", "--id", "n1", "--data-dir", dir, "--api-addr", "127.0.0.1:7998", "--raft-addr", "127.0.0.1:7999")
	if code != 1 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"--initial-cluster or --join", "--data-dir " + dir + " holds no cluster state", "--initial-cluster n1=HOST:RAFTPORT", "--join with the API addresses"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the refused start created %s: %v", dir, err)
	}
}
