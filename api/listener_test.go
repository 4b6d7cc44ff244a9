package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/optoutd/optoutd/api"
	"github.com/optoutd/optoutd/security"
)

// clientIdle is how long a client may keep a connection it has dialed
// before using it: less than client.New's IdleConnTimeout (1 min) and Go's
// default (90 s), so any HTTP client may do it.
const clientIdle = time.Minute

// idleClientListener makes the server's clock run ahead of the client, so
// the tests need not wait: while idling is set, a read deadline the server
// sets less than clientIdle ahead counts as already passed, as if the
// client had waited that long before sending on. With afterTLS, only once
// the server has cleared its deadlines (net/http does when the TLS
// handshake is done). Each deadline set in the future while it applies is
// reported on set.
type idleClientListener struct {
	net.Listener
	afterTLS bool
	idling   atomic.Bool
	set      chan time.Duration // how far ahead each deadline was
}

func (l *idleClientListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &idleClientConn{Conn: c, l: l}, nil
}

type idleClientConn struct {
	net.Conn
	l       *idleClientListener
	cleared atomic.Bool // the server has set no deadline once
}

func (c *idleClientConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		c.cleared.Store(true)
	}
	idling := c.l.idling.Load() && (!c.l.afterTLS || c.cleared.Load())
	ahead := time.Until(t)
	if idling && !t.IsZero() && ahead > 0 && ahead < clientIdle {
		t = time.Unix(1, 0) // the client waited past it
	}
	err := c.Conn.SetReadDeadline(t)
	if idling && ahead > 0 {
		select {
		case c.l.set <- ahead:
		default:
		}
	}
	return err
}

func (c *idleClientConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// serveIdleClient runs the production server and listener (over TLS with
// tlsConf) on loopback behind an idleClientListener.
func serveIdleClient(t *testing.T, tlsConf *tls.Config) (*idleClientListener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	il := &idleClientListener{Listener: ln, afterTLS: tlsConf != nil, set: make(chan time.Duration, 16)}
	srv := api.NewServer(ln.Addr().String(), api.NewHandler(memStore(), api.Options{}))
	srv.TLSConfig = tlsConf
	done := make(chan error, 1)
	go func() { done <- api.Serve(srv, il) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return il, ln.Addr().String()
}

// awaitDeadline waits until the server has armed a read deadline on the
// idling client's connection.
func awaitDeadline(t *testing.T, il *idleClientListener) {
	t.Helper()
	select {
	case <-il.set:
	case <-ctx(t).Done():
		t.Fatal("the server set no read deadline on the idle connection")
	}
}

// getHealthz sends GET /healthz over conn with a real http.Transport.
func getHealthz(t *testing.T, conn net.Conn, scheme string) error {
	t.Helper()
	tr := &http.Transport{
		DialContext:    func(context.Context, string, string) (net.Conn, error) { return conn, nil },
		DialTLSContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil },
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, scheme+"://optoutd/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Fatalf("GET /healthz = %s %q, want 200 \"ok\\n\"", resp.Status, body)
	}
	return nil
}

// A connection a client dialed and kept unused for a while (as Go's
// Transport does with one it dialed for a request that another connection
// served first) must still serve its first request: the server may not
// hang up on it sooner than on an idle kept-alive connection. Before
// api.Serve, net/http's 10 s ReadHeaderTimeout ran from the accept, and
// this request failed with EOF or "connection reset by peer" (issue 11).
func TestFirstRequestOnAConnectionLeftUnusedIsServed(t *testing.T) {
	il, addr := serveIdleClient(t, nil)
	il.idling.Store(true)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	awaitDeadline(t, il)
	il.idling.Store(false)
	if err := getHealthz(t, conn, "http"); err != nil {
		t.Fatalf("first request on a connection left unused for %v: %v", clientIdle, err)
	}
}

// The same over TLS: the client's Transport completes the handshake when
// it dials, so there the wait for the first request starts after it.
func TestFirstRequestOnATLSConnectionLeftUnusedIsServed(t *testing.T) {
	serverConf, clientConf := testTLS(t)
	il, addr := serveIdleClient(t, serverConf)
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(raw, clientConf)
	defer conn.Close()
	il.idling.Store(true) // once the handshake is done
	if err := conn.HandshakeContext(ctx(t)); err != nil {
		t.Fatal(err)
	}
	awaitDeadline(t, il)
	il.idling.Store(false)
	if err := getHealthz(t, conn, "https"); err != nil {
		t.Fatalf("first request on a TLS connection left unused for %v: %v", clientIdle, err)
	}
}

// testTLS is a server certificate for 127.0.0.1 and a client that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	now := time.Now()
	ca, err := security.NewCA("test CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(security.Leaf{CommonName: "optoutd", Hosts: []string{"127.0.0.1", "optoutd"}, Server: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, ServerName: "optoutd", MinVersion: tls.VersionTLS12}
}

// The header timeout still protects the server from a client that starts
// a request and stalls (slowloris): once bytes have arrived, the server's
// deadline holds, and the server hangs up (after a 400 for the half line
// it got, which is net/http's way).
func TestStalledFirstRequestIsStillCutOff(t *testing.T) {
	il, addr := serveIdleClient(t, nil)
	il.idling.Store(true) // for good: the client stalls after its first bytes
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	awaitDeadline(t, il)
	if _, err := conn.Write([]byte("GET /healthz HT")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute)) // a bound for a broken server only
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept a stalled request's connection open past its header timeout (got %q)", got)
	}
	if bytes.Contains(got, []byte(" 200 ")) {
		t.Fatalf("the server answered a request it never fully got: %q", got)
	}
}

// A later request that starts and stalls is cut off too: between requests
// net/http sets the header timeout once the first bytes came, and that one
// is not held.
func TestStalledLaterRequestIsStillCutOff(t *testing.T) {
	il, addr := serveIdleClient(t, nil)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: optoutd\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	il.idling.Store(true) // from now on the client stalls
	if _, err := conn.Write([]byte("GET /healthz HT")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute)) // a bound for a broken server only
	got, err := io.ReadAll(br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept a stalled second request's connection open past its header timeout (got %q)", got)
	}
	if bytes.Contains(got, []byte(" 200 ")) {
		t.Fatalf("the server answered a request it never fully got: %q", got)
	}
}
