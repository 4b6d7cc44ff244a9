package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/security"
)

// secured is what the TLS and auth flags produce.
type secured struct {
	peer, api     *security.Reloader
	apiTLS        *tls.Config
	requireAuth   bool
	bootstrapHash []byte
	// join are the client options --join uses to reach the members.
	join []client.Option
}

// reload re-reads every certificate (SIGHUP).
func (s *secured) reload() {
	for _, r := range []*security.Reloader{s.peer, s.api} {
		if r != nil {
			_ = r.Reload()
		}
	}
}

const (
	minTokenLen    = 16
	maxTokenLen    = 512
	maxJoinTimeout = 24 * time.Hour
)

// readTokenFile reads a bearer token from path, named by flag in errors.
func readTokenFile(flag, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < minTokenLen || len(tok) > maxTokenLen || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s: the token must be %d..%d characters without spaces", flag, minTokenLen, maxTokenLen)
	}
	return tok, nil
}

// joinOptions turns --join-ca-file and --join-token-file into client
// options for the join request.
func (f *nodeFlags) joinOptions() ([]client.Option, error) {
	var opts []client.Option
	if f.joinCA != "" {
		pem, err := os.ReadFile(f.joinCA)
		if err != nil {
			return nil, fmt.Errorf("--join-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--join-ca-file: no PEM certificates in %s", f.joinCA)
		}
		opts = append(opts, client.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	if f.joinTokenFile != "" {
		tok, err := readTokenFile("--join-token-file", f.joinTokenFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithToken(tok))
	}
	return opts, nil
}

func (f *nodeFlags) secure(log *slog.Logger) (*secured, error) {
	s := &secured{requireAuth: f.auth}
	switch n := count(f.peerCert, f.peerKey, f.peerCA); {
	case n == 3:
		r, err := security.NewReloader(security.Files{Cert: f.peerCert, Key: f.peerKey, CA: f.peerCA,
			CertFlag: "--peer-cert-file", KeyFlag: "--peer-key-file", CAFlag: "--peer-ca-file"}, log)
		if err != nil {
			return nil, err
		}
		s.peer = r
	case n != 0:
		return nil, errors.New("--peer-cert-file, --peer-key-file and --peer-ca-file: give all three for peer TLS, or none")
	}
	if count(f.clientCert, f.clientKey) == 1 {
		return nil, errors.New("--client-cert-file and --client-key-file: give both for API TLS, or neither")
	}
	if f.clientCA != "" && f.clientCert == "" {
		return nil, errors.New("--client-ca-file: verifying client certificates needs API TLS (--client-cert-file, --client-key-file)")
	}
	if f.clientCertAuth && f.clientCA == "" {
		return nil, errors.New("--client-cert-auth: requiring client certificates needs --client-ca-file")
	}
	if f.clientCert != "" {
		r, err := security.NewReloader(security.Files{Cert: f.clientCert, Key: f.clientKey, CA: f.clientCA,
			CertFlag: "--client-cert-file", KeyFlag: "--client-key-file", CAFlag: "--client-ca-file"}, log)
		if err != nil {
			return nil, err
		}
		mode := security.NoClientCerts
		switch {
		case f.clientCertAuth:
			mode = security.RequireClientCerts
		case f.clientCA != "":
			mode = security.VerifyIfGiven
		}
		s.api, s.apiTLS = r, r.ServerConfig(mode)
	}
	if f.bootstrapTokenFile != "" {
		tok, err := readTokenFile("--bootstrap-token-file", f.bootstrapTokenFile)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256([]byte(tok))
		s.bootstrapHash = sum[:]
	}
	join, err := f.joinOptions()
	if err != nil {
		return nil, err
	}
	s.join = join
	switch {
	case s.api == nil && s.peer == nil && !s.requireAuth:
		log.Warn("INSECURE: no TLS and no authentication; anyone who can reach the API or Raft port can read and change opt-out state. Configure --client-cert-file, --peer-cert-file and --auth for production")
	default:
		if s.api == nil {
			log.Warn("the client API is plaintext (no --client-cert-file); tokens and subject ids cross the network in clear")
		}
		if s.peer == nil {
			log.Warn("peer traffic is plaintext and unauthenticated (no --peer-cert-file)")
		}
		if !s.requireAuth {
			log.Warn("authentication is not required (no --auth); calls without credentials act as admin")
		}
	}
	return s, nil
}

func count(xs ...string) int {
	n := 0
	for _, x := range xs {
		if x != "" {
			n++
		}
	}
	return n
}
