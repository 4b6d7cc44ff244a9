package api

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Why the API listener is wrapped (issue 11: under load, a few requests
// failed with EOF or "connection reset by peer", and the node logged
// nothing).
//
// net/http arms ReadHeaderTimeout on a new connection as soon as it is
// accepted, not when its first byte arrives; between two requests on a
// kept-alive connection the clock starts only with the next request's
// first bytes, and until then IdleTimeout applies. So a connection that a
// client opened but has not used yet is closed, silently, ReadHeaderTimeout
// (10 s) after it was accepted, while an idle one that has carried a
// request lives IdleTimeout (2 min). HTTP clients hold unused connections:
// Go's Transport keeps a connection it dialed for a request that another
// connection served first, and under load some sit in its idle pool for
// seconds. Its IdleConnTimeout (ours 1 min, Go's default 90 s) trusts
// such a connection for far longer than 10 s, so when the client picks it
// up just as the server hangs up, the request meets a closed connection:
// EOF, or a reset when the request arrives after the close. net/http does
// not retry a POST that it has written, and a Connect call is a POST.
//
// graceListener gives a connection's first request the same terms as every
// later one: until the first byte arrives, a read deadline the server sets
// is pushed out to the idle timeout; when the first byte arrives, the
// header timeout the server asked for starts. A client that goes silent
// after connecting is still cut off, after the idle timeout (as a
// kept-alive one is), and one that starts a request and stalls still gets
// the header timeout (slowloris).

// graceListener wraps each accepted connection in a graceConn.
type graceListener struct {
	net.Listener
	idle time.Duration // the server's idle timeout; 0: none
}

func (l graceListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &graceConn{Conn: c, idle: l.idle}, nil
}

// graceConn holds off the server's header deadline until the first byte.
type graceConn struct {
	net.Conn
	idle time.Duration
	seen atomic.Bool // a byte has been read: pass deadlines through

	mu sync.Mutex
	// header is the read timeout the server asked for before the first
	// byte; it starts when that byte arrives. 0: none.
	header time.Duration
}

// SetReadDeadline passes t through once a byte has been read. Before that,
// a deadline in the future is recorded and replaced by the idle deadline
// (or none, without an idle timeout); one in the past (an abort) and none
// at all pass through.
func (c *graceConn) SetReadDeadline(t time.Time) error {
	if c.seen.Load() {
		return c.Conn.SetReadDeadline(t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen.Load() {
		return c.Conn.SetReadDeadline(t)
	}
	now := time.Now()
	if t.IsZero() || !t.After(now) {
		c.header = 0
		return c.Conn.SetReadDeadline(t)
	}
	c.header = t.Sub(now)
	grace := time.Time{}
	if c.idle > 0 {
		grace = now.Add(max(c.idle, c.header))
	}
	return c.Conn.SetReadDeadline(grace)
}

// SetDeadline is SetReadDeadline and SetWriteDeadline.
func (c *graceConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// Read starts the header timeout with the first byte.
func (c *graceConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.seen.Load() {
		c.mu.Lock()
		if !c.seen.Load() {
			c.seen.Store(true)
			if c.header > 0 {
				_ = c.Conn.SetReadDeadline(time.Now().Add(c.header))
			}
		}
		c.mu.Unlock()
	}
	return n, err
}

// CloseWrite keeps net/http's graceful close (a FIN before the close, so
// the client reads the last response before any reset).
func (c *graceConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
