package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/optoutd/optoutd/api"
	"github.com/optoutd/optoutd/cluster/clustertest"
	"github.com/optoutd/optoutd/store"
)

// TestEnforcementCommandsAgainstRealCluster runs every enforcement command
// against a real three-node cluster: a receipt from check, verified and
// fenced across an opt-out; answers that say deny or DISCARD exit 0, as
// check's deny does; fence stats summed over the endpoints, each node
// once; overrides created, listed and revoked; reports judged one at a time
// and from a file; violations listed and scored.
func TestEnforcementCommandsAgainstRealCluster(t *testing.T) {
	eps := cliCluster(t)
	str := func(o obj, path ...string) string {
		var v any = o
		for _, p := range path {
			m, _ := v.(obj)
			v = m[p]
		}
		return fmt.Sprint(v)
	}

	chk := runJSON(t, "check", "u1", "analytics", "--receipt")
	rcpt := str(chk, "receipt")
	if str(chk, "decision") != "DECISION_ALLOW" || !strings.HasPrefix(rcpt, "optr1.") {
		t.Fatalf("check --receipt printed %v", chk)
	}
	if plain := runJSON(t, "check", "u1", "analytics"); str(plain, "receipt") != "" {
		t.Errorf("check without --receipt got a receipt: %v", plain)
	}
	v := runJSON(t, "receipt", "verify", "--subject", "u1", rcpt)
	if str(v, "status") != "RECEIPT_STATUS_VALID" || str(v, "changed") != "false" || str(v, "receipt", "purpose") != "analytics" {
		t.Fatalf("receipt verify printed %v", v)
	}
	if w := runJSON(t, "receipt", "verify", "--subject", "u2", rcpt); str(w, "status") != "RECEIPT_STATUS_WRONG_SUBJECT" {
		t.Errorf("receipt verify for another subject printed %v", w)
	}
	// Before the opt-out the fence says PROCESS, on n2; after it DISCARD,
	// on n3, and exits 0 like check's deny.
	if p := runJSON(t, "--endpoints", eps[1], "receipt", "should-process", "--service", "mailer", "--subject", "u1", rcpt); str(p, "verdict") != "VERDICT_PROCESS" {
		t.Fatalf("should-process before the opt-out printed %v", p)
	}
	set := runJSON(t, "set", "u1", "analytics", "opted_out")
	code, out, errOut := runMain(t, "--endpoints", eps[2], "-o", "json", "receipt", "should-process", "--service", "mailer", "--subject", "u1", rcpt)
	if code != 0 || errOut != "" || !strings.Contains(out, `"verdict":"VERDICT_DISCARD","reason":"DISCARD_REASON_DENIED_NOW"`) ||
		!strings.Contains(out, `"changedAtVersion":"`+str(set, "version")+`"`) {
		t.Fatalf("should-process after the opt-out: exit %d, stdout %s, stderr %s", code, out, errOut)
	}
	if code, out, _ := runMain(t, "check", "u1", "analytics"); code != 0 || !strings.Contains(out, "DECISION_DENY") {
		t.Fatalf("check of a deny: exit %d, %s", code, out)
	}

	// The two answers were given by n2 and n3: the sum has both, and an
	// endpoint named twice is one node.
	fs := runJSON(t, "--endpoints", strings.Join(append(eps, eps[2]), ","), "fence", "stats")
	nodes, _ := fs["nodes"].([]any)
	counts, _ := fs["counts"].([]any)
	if len(nodes) != 3 || len(counts) != 2 ||
		str(counts[0].(obj), "verdict") != "VERDICT_DISCARD" || str(counts[0].(obj), "count") != "1" ||
		str(counts[1].(obj), "verdict") != "VERDICT_PROCESS" || str(counts[1].(obj), "count") != "1" {
		t.Fatalf("fence stats printed %v", fs)
	}
	if one := runJSON(t, "--endpoints", eps[0], "fence", "stats"); len(one["counts"].([]any)) != 0 {
		t.Errorf("n1 answered no should-process but counts %v", one)
	}

	keys := runJSON(t, "receipt", "keys")
	rot := runJSON(t, "receipt", "rotate-key")
	after := runJSON(t, "receipt", "keys")
	if len(keys["keys"].([]any)) != 1 || str(rot, "key", "keyId") != "2" || len(after["keys"].([]any)) != 2 {
		t.Fatalf("keys %v, rotate-key %v, keys after %v", keys, rot, after)
	}

	before := time.Now()
	allow := runJSON(t, "override", "create", "--purpose", "analytics", "--subject", "u1", "--effect", "allow",
		"--reason", "INC-1 replay", "--owner", "oncall", "--expires-in", "2h")
	exp, err := time.Parse(time.RFC3339Nano, str(allow, "expiresAt"))
	if err != nil || exp.Before(before.Add(2*time.Hour)) || exp.After(time.Now().Add(2*time.Hour)) ||
		str(allow, "state") != "OVERRIDE_STATE_ACTIVE" || str(allow, "effect") != "OVERRIDE_EFFECT_ALLOW" {
		t.Fatalf("override create printed %v (%v)", allow, err)
	}
	if d := runJSON(t, "check", "u1", "analytics"); str(d, "basis") != "BASIS_OVERRIDE" || str(d, "overrideId") != str(allow, "id") {
		t.Errorf("check under the override printed %v", d)
	}
	if l := runJSON(t, "override", "list", "--purpose", "analytics"); len(l["overrides"].([]any)) != 1 {
		t.Errorf("override list printed %v", l)
	}
	if r := runJSON(t, "override", "revoke", str(allow, "id"), "--reason", "replay done"); str(r, "state") != "OVERRIDE_STATE_REVOKED" || str(r, "endReason") != "replay done" {
		t.Errorf("override revoke printed %v", r)
	}
	if l := runJSON(t, "override", "list"); len(l["overrides"].([]any)) != 0 {
		t.Errorf("override list after the revoke printed %v", l)
	}
	if l := runJSON(t, "override", "list", "--all"); len(l["overrides"].([]any)) != 1 {
		t.Errorf("override list --all printed %v", l)
	}
	if s := runJSON(t, "override", "cap", "2h"); str(s, "maxOverride") != "7200s" {
		t.Errorf("override cap printed %v", s)
	}
	_, err = run(t, "override", "create", "--purpose", "analytics", "--effect", "deny", "--reason", "r", "--owner", "o", "--expires-at",
		time.Now().Add(3*time.Hour).UTC().Format(time.RFC3339))
	if err == nil || !strings.Contains(describe(err), "over the cluster's max_override of 2h0m0s") || !strings.Contains(describe(err), "not applied") {
		t.Errorf("an override over the cap: %v", err)
	}

	// u1 is opted out: processed without a receipt now is a violation; u2
	// with its receipt at its read index is clean.
	one := runJSON(t, "report", "--service", "legacy-mailer", "u1", "analytics")
	if vs := one["verdicts"].([]any); len(vs) != 1 || str(vs[0].(obj), "kind") != "VIOLATION_KIND_PROCESSED_WHILE_OPTED_OUT" {
		t.Fatalf("report printed %v", one)
	}
	u2 := runJSON(t, "check", "u2", "analytics", "--receipt")
	lines := fmt.Sprintf("{\"subject_id\":\"u2\",\"purpose\":\"analytics\",\"processed_version\":%s,\"receipt\":%q}\n\n"+
		"{\"subjectId\":\"u3\",\"purpose\":\"analytics\",\"processedAt\":%q}\n", str(u2, "readIndex"), str(u2, "receipt"), time.Now().UTC().Format(time.RFC3339))
	path := filepath.Join(t.TempDir(), "reports.jsonl")
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	batch := runJSON(t, "report", "--service", "batcher", "--file", path)
	if vs := batch["verdicts"].([]any); len(vs) != 2 || str(vs[0].(obj), "kind") != "VIOLATION_KIND_UNSPECIFIED" ||
		str(vs[1].(obj), "kind") != "VIOLATION_KIND_NO_RECEIPT" || str(batch, "violations") != "1" {
		t.Fatalf("report --file printed %v", batch)
	}
	var stdout, stderr strings.Builder
	m := NewMain(&stdout, &stderr)
	m.Stdin = strings.NewReader(lines)
	if err := m.ParseFlags([]string{"report", "--service", "batcher", "--file", "-", "-o", "json"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil || !strings.Contains(stdout.String(), `"violations":1`) {
		t.Fatalf("report --file -: %v, %s", err, stdout.String())
	}

	if l := runJSON(t, "violations", "list", "--service", "batcher"); len(l["violations"].([]any)) != 2 {
		t.Errorf("violations list --service batcher printed %v", l)
	}
	if l := runJSON(t, "violations", "list", "--subject", "u1", "--purpose", "analytics", "--limit", "5"); len(l["violations"].([]any)) != 1 {
		t.Errorf("violations list --subject u1 printed %v", l)
	}
	sc := runJSON(t, "violations", "score", "--window", "48h")
	scores, _ := sc["scores"].([]any)
	if str(sc, "window") != "172800s" || len(scores) != 2 || str(scores[0].(obj), "service") != "batcher" ||
		str(scores[0].(obj), "violationsPer10k") != "5000" || str(scores[1].(obj), "violationsPer10k") != "10000" {
		t.Errorf("violations score printed %v", sc)
	}
	if s := runJSON(t, "violations", "score", "--service", "legacy-mailer"); len(s["scores"].([]any)) != 1 {
		t.Errorf("violations score --service printed %v", s)
	}
}

// serveNode is serve for a node that names itself (in receipts and fence
// stats), as optoutd's nodes do.
// cliCluster starts a real three-node cluster, serves each node's API on
// loopback and points optoutctl at them (OPTOUT_ENDPOINTS); it skips in
// -short mode.
func cliCluster(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := clustertest.New(t, 3)
	c.WaitLeader(30 * time.Second)
	var eps []string
	for i, n := range c.Nodes() {
		eps = append(eps, serveNode(t, store.New(n), fmt.Sprintf("n%d", i+1)))
	}
	t.Setenv("OPTOUT_ENDPOINTS", strings.Join(eps, ","))
	return eps
}

func serveNode(t *testing.T, st api.Store, id string) string {
	t.Helper()
	s := httptest.NewUnstartedServer(api.NewHandler(st, api.Options{NodeID: id}))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	s.Config.Protocols = &p
	s.Start()
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}
