package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Files names a certificate, its key and the CA bundle that verifies the
// other side. Flag names are used in error messages.
type Files struct {
	Cert, Key, CA             string
	CertFlag, KeyFlag, CAFlag string
}

// Reloader holds a certificate and a CA pool loaded from Files, reloading
// them when asked (SIGHUP) or when the files change (checked at most every
// CheckEvery on use). A reload that fails keeps the previous material and
// logs why, so a bad rotation never takes a running node down.
type Reloader struct {
	files      Files
	log        *slog.Logger
	CheckEvery time.Duration
	now        func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	leaf      *x509.Certificate
	pool      *x509.CertPool
	modTimes  [3]time.Time
	lastCheck time.Time
}

// NewReloader loads files and fails if anything is missing, unreadable,
// mismatched or expired.
func NewReloader(files Files, log *slog.Logger) (*Reloader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{files: files, log: log, CheckEvery: 5 * time.Second, now: time.Now}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reloader) load() error {
	f := r.files
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", f.CertFlag, f.KeyFlag, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("%s: %w", f.CertFlag, err)
	}
	now := r.now()
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("%s: certificate %q expired at %s", f.CertFlag, leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("%s: certificate %q is not valid before %s", f.CertFlag, leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	var pool *x509.CertPool
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return fmt.Errorf("%s: %w", f.CAFlag, err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no PEM certificates in %s", f.CAFlag, f.CA)
		}
	}
	if left := leaf.NotAfter.Sub(now); left < 7*24*time.Hour {
		r.log.Warn("certificate expires soon", "flag", f.CertFlag, "subject", leaf.Subject.CommonName, "expires", leaf.NotAfter)
	}
	cert.Leaf = leaf
	r.mu.Lock()
	r.cert, r.leaf, r.pool = &cert, leaf, pool
	r.modTimes = r.stat()
	r.mu.Unlock()
	return nil
}

func (r *Reloader) stat() [3]time.Time {
	var out [3]time.Time
	for i, p := range []string{r.files.Cert, r.files.Key, r.files.CA} {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil {
			out[i] = st.ModTime()
		}
	}
	return out
}

// Reload reads the files again. On failure the old material stays.
func (r *Reloader) Reload() error {
	if err := r.load(); err != nil {
		r.log.Error("certificate reload failed; keeping the previous certificate", "err", err)
		return err
	}
	r.log.Info("certificates reloaded", "cert", r.files.Cert, "not_after", r.leaf.NotAfter)
	return nil
}

// maybeReload reloads when a file's modification time changed, checking at
// most every CheckEvery.
func (r *Reloader) maybeReload() {
	r.mu.Lock()
	due := r.now().Sub(r.lastCheck) >= r.CheckEvery
	if due {
		r.lastCheck = r.now()
	}
	changed := due && r.stat() != r.modTimes
	r.mu.Unlock()
	if changed {
		_ = r.Reload()
	}
}

func (r *Reloader) current() (*tls.Certificate, *x509.CertPool) {
	r.maybeReload()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert, r.pool
}

// Leaf is the current certificate, parsed.
func (r *Reloader) Leaf() *x509.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leaf
}

// ClientAuth is how the API treats client certificates.
type ClientAuth int

const (
	// NoClientCerts: no client CA configured; certificates are not asked.
	NoClientCerts ClientAuth = iota
	// VerifyIfGiven: a client certificate is verified when presented.
	VerifyIfGiven
	// RequireClientCerts: every client must present a valid certificate.
	RequireClientCerts
)

// ServerConfig is the API's TLS configuration. Each handshake uses the
// current certificate and client CA pool.
func (r *Reloader) ServerConfig(auth ClientAuth) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := r.current()
			c := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				NextProtos:   []string{"h2", "http/1.1"},
				Certificates: []tls.Certificate{*cert},
			}
			switch auth {
			case VerifyIfGiven:
				c.ClientAuth, c.ClientCAs = tls.VerifyClientCertIfGiven, pool
			case RequireClientCerts:
				c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, pool
			}
			return c, nil
		},
	}
}

// PeerServerConfig requires and verifies the other node's certificate.
func (r *Reloader) PeerServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := r.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
			}, nil
		},
	}
}

// PeerClientConfig dials serverName presenting this node's certificate and
// verifying the other's against the peer CA.
func (r *Reloader) PeerClientConfig(serverName string) *tls.Config {
	cert, pool := r.current()
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		ServerName:   serverName,
		RootCAs:      pool,
		Certificates: []tls.Certificate{*cert},
	}
}

// ErrNoCA is returned when peer TLS is configured without a CA.
var ErrNoCA = errors.New("security: peer TLS needs a CA to verify other nodes")
