// Package security holds optoutd's TLS plumbing: certificates that reload
// from disk without a restart (Reloader), the TLS configurations of the
// client API and of the peer network built from them, and a small
// certificate authority for development and tests (Generate), used by
// `optoutctl tls init`.
//
// Peer traffic (Raft and the peer RPC) uses mutual TLS: every node presents
// a certificate signed by the peer CA and verifies the other side's. The
// client API presents a server certificate and, when a client CA is
// configured, verifies client certificates (optionally requiring them).
package security
