package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/optoutd/optoutd/security"
)

// The Raft address carries two protocols. A dialer writes one byte first:
const (
	muxRaft byte = 'R' // hashicorp/raft's NetworkTransport
	muxPeer byte = 'P' // the PeerService, HTTP/2 without TLS
)

// muxHeaderTimeout bounds how long an accepted connection may take to send
// its protocol byte.
const muxHeaderTimeout = 5 * time.Second

// Network is how a node listens and dials. The default is plain TCP; tests
// substitute one that can cut a node off (see cluster/clustertest).
type Network interface {
	Listen(addr string) (net.Listener, error)
	DialContext(ctx context.Context, addr string) (net.Conn, error)
}

// TCPNetwork is the real network.
type TCPNetwork struct{}

// Listen listens on addr over TCP.
func (TCPNetwork) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// DialContext dials addr over TCP.
func (TCPNetwork) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// mux accepts on one listener and hands each connection to the protocol
// named by its first byte.
type mux struct {
	ln   net.Listener
	tls  *security.Reloader // nil: plaintext
	log  *slog.Logger
	raft *chanListener
	peer *chanListener
	wg   sync.WaitGroup
}

func newMux(ln net.Listener, tlsr *security.Reloader, log *slog.Logger) *mux {
	return &mux{ln: ln, tls: tlsr, log: log, raft: newChanListener(ln.Addr()), peer: newChanListener(ln.Addr())}
}

func (m *mux) serve() {
	m.wg.Add(1)
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				m.log.Warn("raft listener stopped", LogKeyErr, err)
			}
			_ = m.raft.Close()
			_ = m.peer.Close()
			return
		}
		go m.route(c)
	}
}

func (m *mux) route(c net.Conn) {
	var b [1]byte
	_ = c.SetDeadline(time.Now().Add(muxHeaderTimeout))
	if m.tls != nil {
		tc := tls.Server(c, m.tls.PeerServerConfig())
		if err := tc.Handshake(); err != nil {
			m.log.Warn("refusing peer connection: TLS handshake failed", LogKeyAddr, c.RemoteAddr().String(), LogKeyErr, err)
			_ = c.Close()
			return
		}
		// Hide the *tls.Conn type: net/http would otherwise treat the
		// connection as HTTPS and expect ALPN, not h2c prior knowledge.
		c = opaqueConn{tc}
	}
	if _, err := c.Read(b[:]); err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	var dst *chanListener
	switch b[0] {
	case muxRaft:
		dst = m.raft
	case muxPeer:
		dst = m.peer
	default:
		m.log.Warn("dropping connection with unknown protocol byte", LogKeyAddr, c.RemoteAddr().String(), "byte", b[0])
		_ = c.Close()
		return
	}
	if !dst.deliver(c) {
		_ = c.Close()
	}
}

func (m *mux) close() error {
	err := m.ln.Close()
	m.wg.Wait()
	return err
}

// opaqueConn hides a connection's concrete type.
type opaqueConn struct{ net.Conn }

// dialMux dials addr, runs the TLS handshake when peer TLS is on, and
// announces the protocol.
func dialMux(ctx context.Context, nw Network, tlsr *security.Reloader, addr string, proto byte) (net.Conn, error) {
	c, err := nw.DialContext(ctx, addr)
	if err != nil {
		return nil, &dialError{addr: addr, err: err}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if tlsr != nil {
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(c, tlsr.PeerClientConfig(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return nil, &dialError{addr: addr, err: fmt.Errorf("peer TLS: %w", err)}
		}
		c = opaqueConn{tc}
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		_ = c.Close()
		return nil, &dialError{addr: addr, err: err}
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// dialError marks a failure before any request byte was sent, so a write
// that failed with it was certainly not delivered.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string { return fmt.Sprintf("dial %s: %v", e.addr, e.err) }
func (e *dialError) Unwrap() error { return e.err }

// chanListener is a net.Listener fed by the mux.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
