package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestEnforcementUsageErrors: every flag and argument of the enforcement
// commands is checked before anything is sent, and the error names it.
func TestEnforcementUsageErrors(t *testing.T) {
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(s.Close)
	ep := strings.TrimPrefix(s.URL, "http://")
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	line := `{"subject_id":"u1","purpose":"analytics","processed_version":3}` + "\n"
	long := strings.Repeat("x", 257)
	rcpt := "optr1." + strings.Repeat("A", 1100)
	soon := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	ovr := func(extra ...string) []string {
		return append([]string{"override", "create", "--purpose", "analytics", "--effect", "allow", "--reason", "INC-1", "--owner", "oncall"}, extra...)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "u1", "analytics", "--receipt=maybe"}, `invalid boolean value "maybe" for -receipt`},

		{[]string{"receipt"}, "usage: optoutctl receipt <verify|should-process|keys|rotate-key>"},
		{[]string{"receipt", "verfy"}, `unknown command "verfy"`},
		{[]string{"receipt", "verify", "optr1.x"}, "--subject: required"},
		{[]string{"receipt", "verify", "--subject", long, "optr1.x"}, "--subject: 257 bytes is over the limit of 256"},
		{[]string{"receipt", "verify", "--subject", "u1"}, "usage: optoutctl receipt verify --subject S RECEIPT (got 0 arguments)"},
		{[]string{"receipt", "verify", "--subject", "u1", rcpt}, "RECEIPT: 1106 bytes is over the limit of 1024"},
		{[]string{"receipt", "should-process", "--subject", "u1", "optr1.x"}, "--service: required"},
		{[]string{"receipt", "should-process", "--service", "Mail Er", "--subject", "u1", "optr1.x"}, `--service: "Mail Er" must match [a-z0-9_.-]{1,64}`},
		{[]string{"receipt", "should-process", "--service", "mailer", "optr1.x"}, "--subject: required"},
		{[]string{"receipt", "should-process", "--service", "mailer", "--subject", "u1", rcpt}, "RECEIPT: 1106 bytes"},
		{[]string{"receipt", "should-process", "--service", "mailer", "--subject", "u1", "a", "b"}, "(got 2 arguments)"},
		{[]string{"receipt", "keys", "x"}, "usage: optoutctl receipt keys (got 1 arguments)"},
		{[]string{"receipt", "rotate-key", "now"}, "usage: optoutctl receipt rotate-key (got 1 arguments)"},
		{[]string{"fence", "stats", "n1"}, "usage: optoutctl fence stats (got 1 arguments)"},

		{[]string{"override", "create", "--effect", "deny"}, "--purpose: required"},
		{ovr("--purpose", "Ads!", "--expires-in", "1h"), `--purpose: "Ads!" must match`},
		{ovr("--subject", long, "--expires-in", "1h"), "--subject: 257 bytes is over the limit of 256"},
		{[]string{"override", "create", "--purpose", "analytics", "--reason", "r", "--owner", "o", "--expires-in", "1h"}, "--effect: required: allow"},
		{ovr("--effect", "ALLOW", "--expires-in", "1h"), `--effect: "ALLOW" is not allow or deny`},
		{ovr("--effect", "maybe", "--expires-in", "1h"), `--effect: "maybe" is not allow or deny`},
		{ovr("--reason", "", "--expires-in", "1h"), "--reason: required"},
		{ovr("--reason", long, "--expires-in", "1h"), "--reason: 257 bytes is over the limit of 256"},
		{ovr("--owner", "", "--expires-in", "1h"), "--owner: required"},
		{ovr("--owner", long, "--expires-in", "1h"), "--owner: 257 bytes is over the limit of 128"},
		{ovr(), "--expires-in or --expires-at: give one: every override must expire"},
		{ovr("--expires-in", "1h", "--expires-at", soon), "--expires-in and --expires-at: give one, not both"},
		{ovr("--expires-in", "soon"), `--expires-in: "soon" is not a duration`},
		{ovr("--expires-in", "0s"), "--expires-in: 0s must be between 1s and 720h0m0s"},
		{ovr("--expires-in", "-5m"), "--expires-in: -5m0s must be between"},
		{ovr("--expires-in", "721h"), "--expires-in: 721h0m0s must be between 1s and 720h0m0s"},
		{ovr("--expires-at", "tomorrow"), `--expires-at: "tomorrow" is not an RFC 3339 time`},
		{ovr("--expires-at", "2001-01-01T00:00:00Z"), "--expires-at: 2001-01-01T00:00:00Z is not in the future"},
		{ovr("--expires-at", time.Now().Add(800*time.Hour).UTC().Format(time.RFC3339)), "longer than any cluster allows"},
		{ovr("--expires-in", "1h", "extra"), "(got 1 arguments)"},
		{[]string{"override", "list", "--purpose", "Nope Nope"}, `--purpose: "Nope Nope" must match`},
		{[]string{"override", "list", "--limit", "1001"}, "--limit: 1001 is over the limit of 1000"},
		{[]string{"override", "list", "--limit", "-1"}, `invalid value "-1" for flag -limit`},
		{[]string{"override", "revoke", "--reason", "done"}, "usage: optoutctl override revoke ID --reason R (got 0 arguments)"},
		{[]string{"override", "revoke", "x", "--reason", "done"}, `ID: "x" is not a positive integer`},
		{[]string{"override", "revoke", "0", "--reason", "done"}, `ID: "0" is not a positive integer`},
		{[]string{"override", "revoke", "12"}, "--reason: required"},
		{[]string{"override", "revoke", "12", "--reason", long}, "--reason: 257 bytes is over the limit of 256"},
		{[]string{"override", "cap", "soon"}, `DURATION: "soon" is not a duration`},
		{[]string{"override", "cap", "30s"}, "DURATION: 30s must be between 1m0s and 720h0m0s"},
		{[]string{"override", "cap", "721h"}, "DURATION: 721h0m0s must be between"},
		{[]string{"override", "cap"}, "(got 0 arguments)"},

		{[]string{"report", "u1", "analytics"}, "--service: required"},
		{[]string{"report", "--service", "Mail Er", "u1", "analytics"}, `--service: "Mail Er" must match`},
		{[]string{"report", "--service", "mailer", "u1"}, "usage: optoutctl report --service SVC SUBJECT PURPOSE"},
		{[]string{"report", "--service", "mailer", long, "analytics"}, "SUBJECT: 257 bytes is over the limit of 256"},
		{[]string{"report", "--service", "mailer", "u1", "Analytics"}, `PURPOSE: "Analytics" must match`},
		{[]string{"report", "--service", "mailer", "u1", "analytics", "--version", "x"}, `--version: "x" is not a positive integer`},
		{[]string{"report", "--service", "mailer", "u1", "analytics", "--version", "0"}, `--version: "0" is not a positive integer`},
		{[]string{"report", "--service", "mailer", "u1", "analytics", "--at", "noon"}, `--at: "noon" is not an RFC 3339 time`},
		{[]string{"report", "--service", "mailer", "u1", "analytics", "--at", soon, "--version", "3"}, "--version and --at: give one, not both"},
		{[]string{"report", "--service", "mailer", "u1", "analytics", "--receipt", rcpt}, "--receipt: 1106 bytes is over the limit of 1024"},
		{[]string{"report", "--service", "mailer", "--file", file("a.jsonl", line), "u1", "analytics"}, "(got 2 arguments)"},
		{[]string{"report", "--service", "mailer", "--file", file("b.jsonl", line), "--version", "3"}, "--version: not with --file"},
		{[]string{"report", "--service", "mailer", "--file", file("c.jsonl", line), "--at", soon}, "--at: not with --file"},
		{[]string{"report", "--service", "mailer", "--file", file("d.jsonl", line), "--receipt", "r"}, "--receipt: not with --file"},
		{[]string{"report", "--service", "mailer", "--file", filepath.Join(dir, "missing.jsonl")}, "--file: open "},
		{[]string{"report", "--service", "mailer", "--file", file("empty.jsonl", "\n\n")}, "holds no reports"},
		{[]string{"report", "--service", "mailer", "--file", file("many.jsonl", strings.Repeat(line, 1001))}, "--file: line 1001: more than 1000 reports"},
		{[]string{"report", "--service", "mailer", "--file", file("wide.jsonl", line+`{"subject_id":"`+strings.Repeat("u", 17000)+`"}`+"\n")},
			"--file: line 2 is over the limit of 16384 bytes"},
		{[]string{"report", "--service", "mailer", "--file", file("bad.jsonl", line+"{not json\n")}, "--file: line 2: not a report object"},
		{[]string{"report", "--service", "mailer", "--file", file("unknown.jsonl", `{"subject_id":"u1","purpose":"analytics","processed_version":3,"extra":1}`)},
			"--file: line 1: not a report object"},
		{[]string{"report", "--service", "mailer", "--file", file("both.jsonl", `{"subject_id":"u1","purpose":"analytics","processed_version":3,"processed_at":"2026-01-02T15:04:05Z"}`)},
			"--file: line 1: processed_version and processed_at: give one, not both"},
		{[]string{"report", "--service", "mailer", "--file", file("neither.jsonl", line+`{"subject_id":"u1","purpose":"analytics"}`)},
			"--file: line 2: processed_version or processed_at: one is required"},
		{[]string{"report", "--service", "mailer", "--file", file("nosubject.jsonl", `{"purpose":"analytics","processed_version":3}`)}, "--file: line 1: subject_id: required"},
		{[]string{"report", "--service", "mailer", "--file", file("badpurpose.jsonl", `{"subject_id":"u1","purpose":"A","processed_version":3}`)}, `--file: line 1: purpose: "A" must match`},
		{[]string{"report", "--service", "mailer", "--file", file("badrcpt.jsonl", fmt.Sprintf(`{"subject_id":"u1","purpose":"analytics","processed_version":3,"receipt":%q}`, rcpt))},
			"--file: line 1: receipt: 1106 bytes is over the limit of 1024"},

		{[]string{"violations", "list", "--service", "A B"}, `--service: "A B" must match`},
		{[]string{"violations", "list", "--purpose", "A B"}, `--purpose: "A B" must match`},
		{[]string{"violations", "list", "--subject", long}, "--subject: 257 bytes is over the limit of 256"},
		{[]string{"violations", "list", "--limit", "5000"}, "--limit: 5000 is over the limit of 1000"},
		{[]string{"violations", "list", "--before-id", "x"}, `invalid value "x" for flag -before-id`},
		{[]string{"violations", "score", "--service", "A B"}, `--service: "A B" must match`},
		{[]string{"violations", "score", "--window", "a day"}, `--window: "a day" is not a duration`},
		{[]string{"violations", "score", "--window", "30m"}, "--window: 30m0s must be between 1h0m0s and 720h0m0s"},
		{[]string{"violations", "score", "--window", "721h"}, "--window: 721h0m0s must be between"},
		{[]string{"violations", "score", "--window", "90m"}, "--window: 1h30m0s is not whole hours"},
		{[]string{"violations", "score", "all"}, "(got 1 arguments)"},
	} {
		_, err := run(t, append([]string{"--endpoints", ep}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("optoutctl %s: %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("usage errors sent %d requests", hits.Load())
	}
}

// TestOverrideRequestExpiry: --expires-in counts from now, --expires-at is
// taken as given, and both end in the request's expires_at.
func TestOverrideRequestExpiry(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	r, err := overrideRequest("analytics", "", "deny", "INC-1", "oncall", "90m", "", now)
	if err != nil || !r.ExpiresAt.AsTime().Equal(now.Add(90*time.Minute)) || r.SubjectId != "" || r.Effect.String() != "OVERRIDE_EFFECT_DENY" {
		t.Fatalf("--expires-in 90m: %v, %v", r, err)
	}
	r, err = overrideRequest("all", "u1", "allow", "INC-1", "oncall", "", "2026-01-02T17:30:00+01:00", now)
	if err != nil || !r.ExpiresAt.AsTime().Equal(now.Add(90*time.Minute)) || r.SubjectId != "u1" || r.Purpose != "all" {
		t.Fatalf("--expires-at: %v, %v", r, err)
	}
}

// TestReportDefaultsToNow: a report from the arguments without --version
// or --at says the event was processed now.
func TestReportDefaultsToNow(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	r, err := oneReport("u1", "analytics", "", "", "", now)
	if err != nil || !r.ProcessedAt.AsTime().Equal(now) || r.ProcessedVersion != 0 {
		t.Fatalf("no --version or --at: %v, %v", r, err)
	}
	r, err = oneReport("u1", "analytics", "42", "", "optr1.x", now)
	if err != nil || r.ProcessedAt != nil || r.ProcessedVersion != 42 || r.Receipt != "optr1.x" {
		t.Fatalf("--version 42: %v, %v", r, err)
	}
}

// TestEnforcementHelpAndExitStatus: the new commands' usage is on stdout
// for help; a mistake is exit 2 with the usage once on stderr (a flag the
// command does not have) or exit 1 naming the flag (a bad value), as for
// the other commands.
func TestEnforcementHelpAndExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help", "override", "create"}, "optoutctl override create --purpose P [--subject S] --effect allow|deny"},
		{[]string{"receipt", "should-process", "--help"}, "optoutctl receipt should-process --service SVC --subject S RECEIPT"},
		{[]string{"help", "report"}, "optoutctl report --service SVC --file F"},
		{[]string{"violations", "score", "-h"}, "optoutctl violations score [--service S] [--window 24h]"},
		{[]string{"help", "fence", "stats"}, "-endpoints"},
		{[]string{"help", "check"}, "-receipt"},
	} {
		code, out, errOut := runMain(t, tc.args...)
		if code != 0 || errOut != "" || strings.Count(out, "USAGE") != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("optoutctl %s: exit %d, stdout %q, stderr %q; want %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
	code, out, errOut := runMain(t, "override", "create", "--ttl", "1h")
	if code != 2 || out != "" || !strings.Contains(errOut, "flag provided but not defined: -ttl") || strings.Count(errOut, "USAGE") != 1 ||
		!strings.Contains(errOut, "optoutctl override create --purpose P") {
		t.Errorf("override create --ttl: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runMain(t, "--endpoints", "127.0.0.1:1", "override", "cap", "30s")
	if code != 1 || out != "" || errOut != "optoutctl: DURATION: 30s must be between 1m0s and 720h0m0s\n" {
		t.Errorf("override cap 30s: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
