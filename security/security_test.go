package security

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type pki struct {
	dir string
	ca  *CA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := NewCA("test-ca", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return &pki{dir: dir, ca: ca}
}

func (p *pki) issue(t *testing.T, name, cn string, notBefore, notAfter time.Time) Files {
	t.Helper()
	c, k, err := p.ca.Issue(Leaf{CommonName: cn, Hosts: []string{"127.0.0.1", "localhost"}, Server: true, Client: true, NotBefore: notBefore, NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	cp, kp, err := WritePair(p.dir, name, c, k)
	if err != nil {
		t.Fatal(err)
	}
	return Files{Cert: cp, Key: kp, CA: filepath.Join(p.dir, "ca.pem"), CertFlag: "--cert", KeyFlag: "--key", CAFlag: "--ca"}
}

func TestExpiredCertificateIsRefusedWithTheFlagName(t *testing.T) {
	p := newPKI(t)
	f := p.issue(t, "old", "n1", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	_, err := NewReloader(f, nil)
	if err == nil || !strings.Contains(err.Error(), "--cert") || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired certificate: %v", err)
	}
	f = p.issue(t, "future", "n1", time.Now().Add(time.Hour), time.Now().Add(48*time.Hour))
	if _, err := NewReloader(f, nil); err == nil || !strings.Contains(err.Error(), "not valid before") {
		t.Fatalf("not-yet-valid certificate: %v", err)
	}
	f.CA = filepath.Join(p.dir, "missing.pem")
	f.Cert, f.Key = p.issue(t, "ok", "n1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)).Cert, filepath.Join(p.dir, "ok-key.pem")
	if _, err := NewReloader(f, nil); err == nil || !strings.Contains(err.Error(), "--ca") {
		t.Fatalf("missing CA: %v", err)
	}
}

// handshake runs one mutual-TLS handshake and returns the server's leaf CN
// as the client saw it.
func handshake(t *testing.T, server *tls.Config, client *tls.Config) (string, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), client)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func TestReloadServesTheNewCertificateAndKeepsTheOldOnFailure(t *testing.T) {
	p := newPKI(t)
	f := p.issue(t, "node", "first", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	r, err := NewReloader(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	cn, err := handshake(t, r.PeerServerConfig(), r.PeerClientConfig("127.0.0.1"))
	if err != nil || cn != "first" {
		t.Fatalf("first handshake: %q %v", cn, err)
	}
	p.issue(t, "node", "second", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn, err := handshake(t, r.PeerServerConfig(), r.PeerClientConfig("127.0.0.1")); err != nil || cn != "second" {
		t.Fatalf("after reload: %q %v", cn, err)
	}
	// A broken rotation (an expired certificate) is refused; the node keeps
	// serving the previous one.
	p.issue(t, "node", "third", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	if err := r.Reload(); err == nil {
		t.Fatal("reload accepted an expired certificate")
	}
	if cn, err := handshake(t, r.PeerServerConfig(), r.PeerClientConfig("127.0.0.1")); err != nil || cn != "second" {
		t.Fatalf("after a failed reload: %q %v", cn, err)
	}
}

func TestReloadOnFileChangeWithoutSignal(t *testing.T) {
	p := newPKI(t)
	f := p.issue(t, "node", "first", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	r, err := NewReloader(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.CheckEvery = 0
	p.issue(t, "node", "second", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	future := time.Now().Add(time.Minute)
	for _, path := range []string{f.Cert, f.Key} {
		if err := os.Chtimes(path, future, future); err != nil {
			t.Fatal(err)
		}
	}
	if cn, err := handshake(t, r.PeerServerConfig(), r.PeerClientConfig("127.0.0.1")); err != nil || cn != "second" {
		t.Fatalf("after the files changed: %q %v", cn, err)
	}
}

// serverSideHandshake returns the error the server's handshake ends with.
func serverSideHandshake(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		errc <- c.(*tls.Conn).Handshake()
		_ = c.Close()
	}()
	if conn, err := tls.Dial("tcp", ln.Addr().String(), client); err == nil {
		_, _ = conn.Read(make([]byte, 1))
		_ = conn.Close()
	}
	return <-errc
}

func TestPeerTLSRefusesStrangers(t *testing.T) {
	p := newPKI(t)
	r, err := NewReloader(p.issue(t, "node", "n1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := serverSideHandshake(t, r.PeerServerConfig(), r.PeerClientConfig("127.0.0.1")); err != nil {
		t.Fatalf("a member was refused: %v", err)
	}
	other := newPKI(t)
	stranger, err := NewReloader(other.issue(t, "x", "intruder", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The stranger trusts our CA, so it gets as far as presenting its own
	// certificate, which another CA signed.
	cfg := stranger.PeerClientConfig("127.0.0.1")
	cfg.RootCAs = r.pool
	if err := serverSideHandshake(t, r.PeerServerConfig(), cfg); err == nil {
		t.Fatal("the peer server accepted a certificate from another CA")
	}
	noCert := r.PeerClientConfig("127.0.0.1")
	noCert.Certificates = nil
	if err := serverSideHandshake(t, r.PeerServerConfig(), noCert); err == nil {
		t.Fatal("the peer server accepted a client without a certificate")
	}
}
