package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/security"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type testPKI struct {
	dir string
	ca  *security.CA
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	now := time.Now().Add(-time.Hour)
	ca, err := security.NewCA("test CA", now, now.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, _, err := security.WritePair(dir, "ca", ca.CertPEM, ca.KeyPEM); err != nil {
		t.Fatal(err)
	}
	return &testPKI{dir: dir, ca: ca}
}

func (p *testPKI) issue(t *testing.T, name, cn string, server bool, notBefore, notAfter time.Time) (string, string) {
	t.Helper()
	c, k, err := p.ca.Issue(security.Leaf{CommonName: cn, Hosts: []string{"127.0.0.1", "localhost"}, Server: server, Client: true, NotBefore: notBefore, NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	cp, kp, err := security.WritePair(p.dir, name, c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cp, kp
}

func (p *testPKI) clientTLS(t *testing.T, cert, key string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.ca.CertPEM)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

// TestSecuredCluster: mutual TLS between nodes, HTTPS with optional client
// certificates on the API, bearer tokens and certificate identities mapped
// to roles, the caller in the audit trail, refusals that touch nothing, an
// expired certificate refused, and certificates reloaded on SIGHUP.
func TestSecuredCluster(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Add(-time.Minute)
	nodeCert, nodeKey := p.issue(t, "node", "optoutd-node", true, now, now.Add(24*time.Hour))
	opsCert, opsKey := p.issue(t, "ops", "ops", false, now, now.Add(24*time.Hour))
	oldCert, oldKey := p.issue(t, "old", "old", false, now.Add(-48*time.Hour), now.Add(-time.Hour))
	tokFile := filepath.Join(p.dir, "bootstrap-token")
	const bootstrap = "bootstrap-token-0123456789"
	if err := os.WriteFile(tokFile, []byte(bootstrap+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secure := []string{"--peer-cert-file", nodeCert, "--peer-key-file", nodeKey, "--peer-ca-file", filepath.Join(p.dir, "ca.pem"),
		"--client-cert-file", nodeCert, "--client-key-file", nodeKey, "--client-ca-file", filepath.Join(p.dir, "ca.pem"),
		"--auth", "--bootstrap-token-file", tokFile}
	pc := startProcClusterWith(t, secure, func(p *proc) string { return "https://" + p.api + "/readyz" }, p.clientTLS(t, "", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eps := []string{pc.procs[0].api, pc.procs[1].api, pc.procs[2].api}
	newClient := func(opts ...client.Option) *client.Client {
		c, err := client.New(eps, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	tlsOnly := client.WithTLS(p.clientTLS(t, "", ""))
	admin := newClient(tlsOnly, client.WithToken(bootstrap))

	writerTok, err := admin.CreateToken(ctx, "svc-web", optoutv1.Role_ROLE_WRITER)
	if err != nil {
		t.Fatalf("create writer token: %v", err)
	}
	readerTok, err := admin.CreateToken(ctx, "dashboard", optoutv1.Role_ROLE_READER)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.GrantCertificate(ctx, "ops", optoutv1.Role_ROLE_AUDITOR); err != nil {
		t.Fatal(err)
	}
	writer := newClient(tlsOnly, client.WithToken(writerTok.Token))
	reader := newClient(tlsOnly, client.WithToken(readerTok.Token))
	anon := newClient(tlsOnly)
	forged := newClient(tlsOnly, client.WithToken("optout_not-a-real-token"))
	ops := newClient(client.WithTLS(p.clientTLS(t, opsCert, opsKey)))

	set := &optoutv1.SetRequest{SubjectId: "sec-1", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT, Source: "web"}
	w, err := writer.Set(ctx, set)
	if err != nil {
		t.Fatalf("writer Set: %v", err)
	}
	if _, err := reader.Check(ctx, &optoutv1.CheckRequest{SubjectId: "sec-1", Purpose: "analytics"}); err != nil {
		t.Fatalf("reader Check: %v", err)
	}
	denied := &optoutv1.SetRequest{SubjectId: "sec-2", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT}
	_, err = reader.Set(ctx, denied)
	wantCode(t, err, connect.CodePermissionDenied, "dashboard (role reader) may not call")
	_, err = anon.Check(ctx, &optoutv1.CheckRequest{SubjectId: "sec-1", Purpose: "analytics"})
	wantCode(t, err, connect.CodeUnauthenticated, "missing credentials")
	_, err = forged.Set(ctx, denied)
	wantCode(t, err, connect.CodeUnauthenticated, "invalid token")
	_, err = ops.Set(ctx, denied)
	wantCode(t, err, connect.CodePermissionDenied, "ops (role auditor)")
	// Overrides: a writer may pull a kill switch (DENY) but not bypass
	// opt-outs (ALLOW); an admin may.
	ov := func(e optoutv1.OverrideEffect) *optoutv1.CreateOverrideRequest {
		return &optoutv1.CreateOverrideRequest{SubjectId: "sec-1", Purpose: "analytics", Effect: e, Reason: "INC-7", Owner: "oncall",
			ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))}
	}
	_, err = writer.CreateOverride(ctx, ov(optoutv1.OverrideEffect_OVERRIDE_EFFECT_ALLOW))
	wantCode(t, err, connect.CodePermissionDenied, "needs the admin role; svc-web has role writer")
	if _, err := writer.CreateOverride(ctx, ov(optoutv1.OverrideEffect_OVERRIDE_EFFECT_DENY)); err != nil {
		t.Fatalf("writer DENY override: %v", err)
	}
	allow, err := admin.CreateOverride(ctx, ov(optoutv1.OverrideEffect_OVERRIDE_EFFECT_ALLOW))
	if err != nil || allow.CreatedBy != "bootstrap" {
		t.Fatalf("admin ALLOW override: %v, %v", allow, err)
	}
	_, err = reader.CreateOverride(ctx, ov(optoutv1.OverrideEffect_OVERRIDE_EFFECT_DENY))
	wantCode(t, err, connect.CodePermissionDenied, "dashboard (role reader) may not call")
	if l, err := reader.ListOverrides(ctx, &optoutv1.ListOverridesRequest{}); err != nil || len(l.Overrides) != 2 {
		t.Fatalf("reader lists overrides: %v, %v", l, err)
	}
	// None of the refused writes touched state.
	if _, err := admin.Get(ctx, &optoutv1.GetRequest{SubjectId: "sec-2", Purpose: "analytics"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("a refused write reached state: %v", err)
	}
	// The authenticated caller is in the audit trail; the certificate
	// identity may read it.
	h, err := ops.History(ctx, &optoutv1.HistoryRequest{SubjectId: "sec-1"})
	if err != nil || len(h.Entries) != 1 || h.Entries[0].Caller != "svc-web" || h.Entries[0].Version != w.Version {
		t.Fatalf("history as the auditor certificate: %v %v", h, err)
	}
	// Revoking a token takes effect.
	if _, err := admin.RevokePrincipal(ctx, "dashboard"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = reader.Check(ctx, &optoutv1.CheckRequest{SubjectId: "sec-1", Purpose: "analytics"})
		if connect.CodeOf(err) == connect.CodeUnauthenticated || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantCode(t, err, connect.CodeUnauthenticated, "invalid token")

	// An expired client certificate fails the TLS handshake.
	old := newClient(client.WithTLS(p.clientTLS(t, oldCert, oldKey)), client.WithToken(bootstrap))
	if _, err := old.Status(ctx); err == nil {
		t.Fatal("a client with an expired certificate got through")
	}
	// Plaintext HTTP to the HTTPS port fails.
	if _, err := newClient(client.WithToken(bootstrap)).Status(ctx); err == nil {
		t.Fatal("a plaintext client got an answer from the TLS port")
	}

	// Rotate the API certificate and send SIGHUP: new connections see it.
	before := servedSerial(t, pc.procs[0].api, p)
	p.issue(t, "node", "optoutd-node", true, now, now.Add(24*time.Hour))
	_ = pc.procs[0].cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(10 * time.Second)
	for servedSerial(t, pc.procs[0].api, p) == before {
		if time.Now().After(deadline) {
			t.Fatal("the API certificate did not change after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// And the cluster still replicates over peer TLS with the rotated file.
	if _, err := writer.Set(ctx, &optoutv1.SetRequest{SubjectId: "sec-3", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT}); err != nil {
		t.Fatal(err)
	}

	// A new node joins the secured cluster over HTTPS with an admin token;
	// without the token it stops, naming the flag, and adds nothing.
	joinVia := pc.procs[0].api + "," + pc.procs[1].api
	startJoiner := func(extra ...string) *proc {
		addrs := freePorts(t, 2)
		j := &proc{id: "n4", api: addrs[0], raft: addrs[1]}
		j.args = append([]string{"server", "--id", "n4", "--data-dir", filepath.Join(t.TempDir(), "n4"), "--api-addr", j.api,
			"--raft-addr", j.raft, "--join", joinVia, "--join-timeout", "30s", "--log-level", "info",
			"--join-ca-file", filepath.Join(p.dir, "ca.pem")}, secure...)
		j.args = append(j.args, extra...)
		pc.procs = append(pc.procs, j)
		pc.start(j)
		return j
	}
	members := func() []string {
		st, err := admin.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, n := range st.Nodes {
			ids = append(ids, n.Id)
		}
		return ids
	}
	noToken := startJoiner()
	select {
	case <-noToken.done:
	case <-ctx.Done():
		t.Fatal("a join without a token neither failed nor finished")
	}
	if !strings.Contains(noToken.log.String(), "--join-token-file") || strings.Contains(strings.Join(members(), ","), "n4") {
		t.Fatalf("a join without a token: members %v, log:\n%s", members(), tail(noToken.log.String(), 2000))
	}
	joiner := startJoiner("--join-token-file", tokFile)
	for !strings.Contains(strings.Join(members(), ","), "n4") {
		select {
		case <-joiner.done:
			t.Fatalf("n4 exited instead of joining: %v\n%s", joiner.exitErr, tail(joiner.log.String(), 2000))
		case <-ctx.Done():
			t.Fatal("n4 never joined the secured cluster")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func servedSerial(t *testing.T, addr string, p *testPKI) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, p.clientTLS(t, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestExpiredServerCertificateRefusedAtStart names the flag.
func TestExpiredServerCertificateRefusedAtStart(t *testing.T) {
	p := newTestPKI(t)
	cert, key := p.issue(t, "old", "n1", true, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	addrs := freePorts(t, 2)
	var out bytes.Buffer
	m := NewMain(&out, &out)
	err := m.ParseFlags([]string{"server", "--id", "n1", "--data-dir", t.TempDir(), "--api-addr", addrs[0], "--raft-addr", addrs[1],
		"--initial-cluster", "n1=" + addrs[1], "--client-cert-file", cert, "--client-key-file", key})
	if err == nil {
		err = m.Run(context.Background())
	}
	if err == nil || !strings.Contains(err.Error(), "--client-cert-file") || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired certificate at start: %v", err)
	}
}
