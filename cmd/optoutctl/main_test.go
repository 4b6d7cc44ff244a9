package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api"
	"github.com/optoutd/optoutd/cluster/clustertest"
	"github.com/optoutd/optoutd/store"
)

type obj = map[string]any

// run runs optoutctl in-process and returns what it printed.
func run(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	m := NewMain(&out, &errOut)
	if err := m.ParseFlags(args); err != nil {
		return out.String(), err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = m.Run(ctx)
	return out.String(), err
}

// runJSON runs a command that must succeed and decodes its output.
func runJSON(t *testing.T, args ...string) obj {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("optoutctl %s: %v", strings.Join(args, " "), describe(err))
	}
	var m obj
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("optoutctl %s printed %q: %v", strings.Join(args, " "), out, err)
	}
	return m
}

// serve starts the real API over store, on HTTP/1.1 and h2c like optoutd,
// and returns its host:port.
func serve(t *testing.T, store api.Store) string {
	t.Helper()
	s := httptest.NewUnstartedServer(api.NewHandler(store, api.Options{}))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	s.Config.Protocols = &p
	s.Start()
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// TestCommandsAgainstRealCluster runs every command, as documented in
// doc.go, against a real three-node cluster.
func TestCommandsAgainstRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := clustertest.New(t, 3)
	c.WaitLeader(30 * time.Second)
	var eps []string
	for _, n := range c.Nodes() {
		eps = append(eps, serve(t, store.New(n)))
	}
	endpoints := strings.Join(eps, ",")

	set := runJSON(t, "--endpoints", endpoints, "set", "u1", "email_marketing", "opted_out", "--source", "cli", "--reason", "asked by phone")
	v, _ := set["version"].(string)
	rec, _ := set["record"].(obj)
	if v == "" || v == "0" || rec["version"] != v || rec["state"] != "STATE_OPTED_OUT" || rec["source"] != "cli" ||
		rec["reason"] != "asked by phone" || rec["subjectId"] != "u1" || rec["purpose"] != "email_marketing" {
		t.Fatalf("set printed %v", set)
	}

	chk := runJSON(t, "--endpoints", endpoints, "check", "u1", "email_marketing")
	if chk["decision"] != "DECISION_DENY" || chk["state"] != "STATE_OPTED_OUT" || chk["version"] != v || chk["readIndex"] == nil {
		t.Errorf("check printed %v", chk)
	}
	none := runJSON(t, "--endpoints", endpoints, "check", "nobody", "email_marketing")
	if none["decision"] != "DECISION_ALLOW" || none["state"] != "STATE_UNSPECIFIED" || none["version"] != "0" {
		t.Errorf("check of an unknown subject printed %v", none)
	}

	get := runJSON(t, "--endpoints", endpoints, "get", "u1", "email_marketing")
	if r, _ := get["record"].(obj); r["version"] != v || r["source"] != "cli" || r["updatedAt"] == "" {
		t.Errorf("get printed %v", get)
	}

	st := runJSON(t, "--endpoints", endpoints, "status")
	if nodes, _ := st["nodes"].([]any); len(nodes) != 3 || st["leaderId"] == "" || st["nodeId"] == "" {
		t.Errorf("status printed %v", st)
	}

	// Flags before the arguments work too, and so does the environment.
	t.Setenv("OPTOUT_ENDPOINTS", endpoints)
	in := runJSON(t, "set", "--expected-version", v, "u1", "email_marketing", "in")
	if r, _ := in["record"].(obj); r["state"] != "STATE_OPTED_IN" || r["source"] != "optoutctl" {
		t.Errorf("set in printed %v", in)
	}

	// A stale compare-and-set: the error says so and what to do.
	_, err := run(t, "set", "--expected-version", "0", "u1", "email_marketing", "out")
	if err == nil {
		t.Fatal("stale compare-and-set succeeded")
	}
	d := describe(err)
	for _, want := range []string{"failed_precondition", "current version " + in["version"].(string), "not applied"} {
		if !strings.Contains(d, want) {
			t.Errorf("stale CAS described as %q, missing %q", d, want)
		}
	}

	// A watch of an undefined purpose ends at once with not_found, as a
	// check of it does; it does not wait for changes that cannot come.
	if out, err := run(t, "watch", "--purposes", "email_marketing,nonexist"); connect.CodeOf(err) != connect.CodeNotFound ||
		!strings.Contains(describe(err), `purpose "nonexist" is not defined`) || out != "" {
		t.Errorf("watch of an undefined purpose: %q %v", out, err)
	}

	// get of a missing record is an error, not an empty record.
	if out, err := run(t, "get", "nobody", "email_marketing"); err == nil || !strings.Contains(describe(err), "not_found") || out != "" {
		t.Errorf("get of a missing record: %q %v", out, err)
	}
}

// TestUsageErrors: mistakes are refused before anything is sent, with a
// message that says what is wrong.
func TestUsageErrors(t *testing.T) {
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(s.Close)
	ep := strings.TrimPrefix(s.URL, "http://")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "u1", "email_marketing"}, "usage: optoutctl set SUBJECT PURPOSE"},
		{[]string{"set", "u1", "email_marketing", "out", "extra"}, "usage: optoutctl set"},
		{[]string{"check", "u1"}, "usage: optoutctl check SUBJECT PURPOSE (got 1 arguments)"},
		{[]string{"get"}, "usage: optoutctl get SUBJECT PURPOSE (got 0 arguments)"},
		{[]string{"status", "n1"}, "usage: optoutctl status"},
		{[]string{"set", "u1", "email_marketing", "maybe"}, `state: "maybe" is not opted_out or opted_in`},
		{[]string{"set", "u1", "email_marketing", "OPTED_OUT"}, `state: "OPTED_OUT"`},
		{[]string{"set", "--expected-version", "-1", "u1", "email_marketing", "out"}, `--expected-version: "-1" is not a non-negative integer`},
		{[]string{"set", "--expected-version", "v3", "u1", "email_marketing", "out"}, `--expected-version: "v3"`},
		{[]string{"set", "u1", "email_marketing", "out", "--expected-version", "x"}, `--expected-version: "x"`},
		{[]string{"set", "--bogus", "u1", "email_marketing", "out"}, "flag provided but not defined: -bogus"},
		{[]string{"--timeout", "soon", "status"}, "invalid value"},
		{[]string{"frobnicate"}, `unknown command "frobnicate": want one of set, check, get, status, erase, purpose, history, state-at, audit, watch, admin, members, tls, token, cert, snapshot, import, export, receipt, fence, override, report, violations, help`},
		{[]string{"-o", "xml", "status"}, `--output: "xml" is not one of pretty, json, table`},
		{[]string{"status", "--output", "yaml"}, `--output: "yaml"`},
	} {
		_, err := run(t, append([]string{"--endpoints", ep}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("optoutctl %s: %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if _, err := run(t, "--endpoints", ep); !errors.Is(err, errNoCommand) {
		t.Errorf("no command: %v, want errNoCommand (Main prints the usage)", err)
	}
	for _, eps := range []string{"", " , ", ","} {
		_, err := run(t, "--endpoints", eps, "check", "u1", "email_marketing")
		if err == nil || !strings.HasPrefix(err.Error(), "--endpoints: ") {
			t.Errorf("--endpoints %q: %v, want an error naming --endpoints", eps, err)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("usage errors sent %d requests", hits.Load())
	}
}

// fakeStore is an api.Store of func fields; what a test does not set
// answers unavailable.
type fakeStore struct {
	set    func(optoutd.SetRequest) (optoutd.Record, error)
	setCtx func(context.Context) (optoutd.Record, error) // used instead of set when not nil
	erase  func() error
	sets   atomic.Int64
	erases atomic.Int64
}

var errFakeDown = optoutd.Errorf(optoutd.Unavailable, "no leader")

func (s *fakeStore) SetBatch(context.Context, optoutd.SetBatchRequest) (optoutd.SetBatchResult, error) {
	return optoutd.SetBatchResult{}, errFakeDown
}

func (s *fakeStore) Set(ctx context.Context, r optoutd.SetRequest) (optoutd.SetResult, error) {
	s.sets.Add(1)
	var (
		rec optoutd.Record
		err error
	)
	if s.setCtx != nil {
		rec, err = s.setCtx(ctx)
	} else {
		rec, err = s.set(r)
	}
	return optoutd.SetResult{Record: rec}, err
}
func (s *fakeStore) Read(context.Context, func(optoutd.View) error) (uint64, error) {
	return 0, errFakeDown
}
func (s *fakeStore) ReadLocal(func(optoutd.View) error) error  { return errFakeDown }
func (s *fakeStore) WaitApplied(context.Context, uint64) error { return errFakeDown }
func (s *fakeStore) Status(context.Context) (optoutd.ClusterStatus, error) {
	return optoutd.ClusterStatus{}, errFakeDown
}
func (s *fakeStore) StateDigest(context.Context) (optoutd.StateDigest, error) {
	return optoutd.StateDigest{}, errFakeDown
}
func (s *fakeStore) DefinePurpose(context.Context, optoutd.Purpose, *uint64, uint32, string) (optoutd.Purpose, uint64, error) {
	return optoutd.Purpose{}, 0, errFakeDown
}
func (s *fakeStore) UpdateSettings(context.Context, *uint32, *time.Duration, uint32, string) (optoutd.Settings, error) {
	return optoutd.Settings{}, errFakeDown
}
func (s *fakeStore) EraseSubject(context.Context, string, string, uint32, string) (uint64, uint32, error) {
	s.erases.Add(1)
	if s.erase == nil {
		return 0, 0, errFakeDown
	}
	return 0, 0, s.erase()
}
func (s *fakeStore) RotateReceiptKey(context.Context, []byte, bool, uint32, string) (uint32, error) {
	return 0, errFakeDown
}
func (s *fakeStore) CreateOverride(context.Context, optoutd.Override, uint32, string) (optoutd.Override, error) {
	return optoutd.Override{}, errFakeDown
}
func (s *fakeStore) EndOverride(context.Context, uint64, bool, string, uint32, string) (optoutd.Override, error) {
	return optoutd.Override{}, errFakeDown
}
func (s *fakeStore) SetMaxOverride(context.Context, time.Duration, uint32, string) (optoutd.Settings, error) {
	return optoutd.Settings{}, errFakeDown
}
func (s *fakeStore) RecordReports(context.Context, optoutd.ReportBatch, uint32, string) (uint64, error) {
	return 0, errFakeDown
}
func (s *fakeStore) Ready() error { return errors.New("no leader") }

// TestWriteErrorsAreDescribed: the CLI tells a user whether a failed write
// may have been applied. A set carries an idempotency key (the client makes
// one up), so it is retried after an unknown outcome too, always with the
// same key, until --timeout; a definitive refusal is not retried.
func TestWriteErrorsAreDescribed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		flags    []string
		err      error // nil: hold the write until the request's deadline
		want     []string
		attempts int64 // 0: more than one (retried until --timeout)
	}{
		{"unknown outcome", nil, optoutd.Errorf(optoutd.OutcomeUnknown, "leadership lost; the write may have been applied"),
			[]string{"unknown: ", "MAY have been applied", "read before retrying"}, 0},
		{"server timeout", nil, optoutd.WrapError(optoutd.OutcomeUnknown, context.DeadlineExceeded, "the write may have been applied"),
			[]string{"unknown: ", "MAY have been applied"}, 0},
		// The CLI's own --timeout passes while the write is in flight: no
		// WriteOutcome can arrive, and the write may still apply.
		{"client timeout", []string{"--timeout", "2s"}, nil,
			[]string{"deadline_exceeded: ", "MAY have been applied"}, 1},
		{"not applied", nil, optoutd.Errorf(optoutd.Unavailable, "no leader"),
			[]string{"unavailable: ", "not applied, retrying is safe"}, 0},
		{"conflict", nil, &optoutd.Error{Code: optoutd.VersionMismatch, Message: "expected version 3, current version 17", CurrentVersion: 17},
			[]string{"failed_precondition: ", "current version 17", "not applied"}, 1},
		{"deny wins", nil, &optoutd.Error{Code: optoutd.VersionMismatch, CurrentVersion: 21,
			Message: "re-consent needs expectedVersion: the subject opted out at current version 21, and an opt-in may replace an opt-out only by naming that version"},
			[]string{"failed_precondition: re-consent needs expectedVersion", "current version 21", "not applied"}, 1},
		{"conflict without the version in the message", nil, &optoutd.Error{Code: optoutd.VersionMismatch, Message: "version mismatch", CurrentVersion: 5},
			[]string{"version mismatch (current version 5)"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var keys sync.Map
			store := &fakeStore{set: func(r optoutd.SetRequest) (optoutd.Record, error) {
				keys.Store(r.IdempotencyKey, true)
				return optoutd.Record{}, tc.err
			}}
			// The same node twice: a retry would show as a second attempt.
			ep := serve(t, store)
			if tc.err == nil {
				// Never answer before the client gives up; let go when the
				// test ends (before the server's Close waits for us).
				release := make(chan struct{})
				t.Cleanup(func() { close(release) })
				store.setCtx = func(context.Context) (optoutd.Record, error) {
					<-release
					return optoutd.Record{}, optoutd.Errorf(optoutd.OutcomeUnknown, "too late")
				}
			}
			flags := tc.flags
			if flags == nil {
				flags = []string{"--timeout", "1s"}
			}
			args := append(append([]string{"--endpoints", ep + "," + ep}, flags...), "set", "u1", "email_marketing", "out")
			_, err := run(t, args...)
			if err == nil {
				t.Fatal("set succeeded")
			}
			if tc.err == nil && store.sets.Load() == 0 {
				// The write must be in flight when the timeout passes; on a
				// machine too loaded to send it within 2s, that is unknowable.
				t.Skipf("the write did not reach the server before --timeout: %v", err)
			}
			d := describe(err)
			for _, w := range tc.want {
				if !strings.Contains(d, w) {
					t.Errorf("described as %q, missing %q", d, w)
				}
			}
			if n := strings.Count(d, "current version"); n > 1 {
				t.Errorf("described as %q: states the current version %d times", d, n)
			}
			if tc.attempts == 1 && strings.Contains(d, "not applied") == strings.Contains(d, "MAY") {
				t.Errorf("described as %q: must say exactly one of applied/not applied", d)
			}
			switch n := store.sets.Load(); {
			case tc.attempts == 0 && n < 2:
				t.Errorf("%d attempts, want it retried", n)
			case tc.attempts > 0 && n != tc.attempts:
				t.Errorf("%d attempts, want %d", n, tc.attempts)
			}
			nkeys := 0
			keys.Range(func(k, _ any) bool {
				nkeys++
				if k == "" {
					t.Error("a set went out without an idempotency key")
				}
				return true
			})
			if store.sets.Load() > 0 && tc.err != nil && nkeys != 1 {
				t.Errorf("%d different idempotency keys over the attempts, want 1", nkeys)
			}
		})
	}
}

// TestEveryWriteCommandSaysWhetherItApplied: the outcome of a write the
// server reports is described whichever command sent it (here erase).
func TestEveryWriteCommandSaysWhetherItApplied(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{optoutd.Errorf(optoutd.OutcomeUnknown, "leadership lost"), "MAY have been applied"},
		{optoutd.Errorf(optoutd.Invalid, "subject_id: bad"), "not applied"},
	} {
		store := &fakeStore{erase: func() error { return tc.err }}
		_, err := run(t, "--endpoints", serve(t, store), "erase", "u1", "--reason", "gdpr")
		if err == nil || !strings.Contains(describe(err), tc.want) {
			t.Errorf("erase failing with %v described as %q, want %q", tc.err, describe(err), tc.want)
		}
		if store.erases.Load() != 1 {
			t.Errorf("erase reached the store %d times, want 1", store.erases.Load())
		}
	}
}

// TestUnreachableEndpointsAreSkipped: the first endpoint refuses
// connections; the command still succeeds through the second.
func TestUnreachableEndpointsAreSkipped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	store := &fakeStore{set: func(r optoutd.SetRequest) (optoutd.Record, error) {
		return optoutd.Record{Key: r.Key, State: r.State, Version: 9, Source: r.Source}, nil
	}}
	out := runJSON(t, "--endpoints", dead+","+serve(t, store), "set", "u1", "email_marketing", "out")
	if out["version"] != "9" {
		t.Errorf("set printed %v", out)
	}
}
