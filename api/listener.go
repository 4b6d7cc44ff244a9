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
// later one: a read deadline shorter than the idle timeout that the server
// sets before any byte has arrived since its previous deadline starts
// counting only with the next byte; until then the idle timeout applies.
// On a new connection that is the header timeout (over TLS: first the
// handshake's, then, after the handshake, the first request's). Between
// requests net/http itself waits for the first bytes under the idle
// timeout and sets the header timeout after they came, so that one passes
// through. A client that goes silent is still cut off after the idle
// timeout, as a kept-alive one is, and one that starts a request and
// stalls still gets the header timeout (slowloris).

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

// graceConn holds a short read deadline off until data arrives.
type graceConn struct {
	net.Conn
	idle    time.Duration
	waiting atomic.Bool // a deadline is held until the next byte
	read    atomic.Bool // a byte arrived since the last deadline was set

	mu   sync.Mutex
	held time.Duration // the held deadline, as a time from the next byte
}

// SetReadDeadline holds a deadline in the future that is shorter than the
// idle timeout, set while no byte came since the last one, and sets the
// idle deadline (none without an idle timeout) in its place; any other
// (none, a past one that aborts a read, a long one, one set after bytes
// came) passes through.
func (c *graceConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	bytesCame := c.read.Swap(false)
	if bytesCame || t.IsZero() || !t.After(now) || (c.idle > 0 && t.Sub(now) >= c.idle) {
		c.waiting.Store(false)
		return c.Conn.SetReadDeadline(t)
	}
	c.held = t.Sub(now)
	c.waiting.Store(true)
	grace := time.Time{}
	if c.idle > 0 {
		grace = now.Add(c.idle)
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

// Read starts a held deadline with the first byte after it was set.
func (c *graceConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.read.Store(true)
	}
	if n > 0 && c.waiting.Load() {
		c.mu.Lock()
		if c.waiting.Load() {
			c.waiting.Store(false)
			_ = c.Conn.SetReadDeadline(time.Now().Add(c.held))
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
