// Package clustertest runs real multi-node clusters inside a test process:
// real Raft, real bbolt files in t.TempDir(), real TCP on 127.0.0.1. Its
// Net can cut a node off from every peer (closing live connections and
// refusing new ones), the in-process stand-in for a network partition; the
// chaos suite in jepsen/ does the same with nftables between processes.
//
// It plays the role net/http/httptest plays for HTTP: a helper for tests of
// this package and of the packages above it, never used in production.
package clustertest
