package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/optoutd/optoutd/api"
)

// clientIdle is how long a client may keep a connection it has dialed
// before using it: less than client.New's IdleConnTimeout (1 min) and Go's
// default (90 s), so any HTTP client may do it.
const clientIdle = time.Minute

// idleClientListener makes the server's clock run ahead of the client, so
// the tests need not wait: until the client has sent its first byte (or,
// with stallAfterFirst, for good), a read deadline the server sets less
// than clientIdle ahead counts as already passed, as if the client had
// waited that long. Every deadline the server sets is reported on set.
type idleClientListener struct {
	net.Listener
	stallAfterFirst bool
	set             chan time.Duration // how far ahead each deadline was
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
	l    *idleClientListener
	mu   sync.Mutex
	seen bool
}

func (c *idleClientConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		c.seen = true
		c.mu.Unlock()
	}
	return n, err
}

func (c *idleClientConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	warp := !c.seen || c.l.stallAfterFirst
	c.mu.Unlock()
	ahead := time.Until(t)
	if t.IsZero() {
		ahead = 0
	}
	if warp && !t.IsZero() && ahead > 0 && ahead < clientIdle {
		t = time.Unix(1, 0) // the client waited past it
	}
	err := c.Conn.SetReadDeadline(t)
	select {
	case c.l.set <- ahead:
	default:
	}
	return err
}

func (c *idleClientConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// serveIdleClient runs the production server and listener on loopback
// behind an idleClientListener and returns a connection dialed to it,
// after the server has armed its first read deadline on it.
func serveIdleClient(t *testing.T, stallAfterFirst bool) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	il := &idleClientListener{Listener: ln, stallAfterFirst: stallAfterFirst, set: make(chan time.Duration, 16)}
	srv := api.NewServer(ln.Addr().String(), api.NewHandler(memStore(), api.Options{}))
	done := make(chan error, 1)
	go func() { done <- api.Serve(srv, il) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	select {
	case <-il.set: // the server has started its clock on this connection
	case <-ctx(t).Done():
		t.Fatal("the server set no read deadline on a new connection")
	}
	return conn
}

// A connection a client dialed and kept unused for a while (as Go's
// Transport does with one it dialed for a request that another connection
// served first) must still serve its first request: the server may not
// hang up on it sooner than on an idle kept-alive connection. Before
// api.Serve, net/http's 10 s ReadHeaderTimeout ran from the accept, and
// this request failed with EOF or "connection reset by peer" (issue 11).
func TestFirstRequestOnAConnectionLeftUnusedIsServed(t *testing.T) {
	conn := serveIdleClient(t, false)
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, "http://optoutd/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("first request on a connection left unused for %v: %v", clientIdle, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Fatalf("GET /healthz = %s %q, want 200 \"ok\\n\"", resp.Status, body)
	}
}

// The header timeout still protects the server from a client that starts
// a request and stalls (slowloris): once bytes have arrived, the server's
// deadline holds, and the server hangs up (after a 400 for the half line
// it got, which is net/http's way).
func TestStalledFirstRequestIsStillCutOff(t *testing.T) {
	conn := serveIdleClient(t, true)
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
