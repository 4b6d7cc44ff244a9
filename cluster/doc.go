// Package cluster owns one optoutd node: the hashicorp/raft instance, its
// raft-boltdb log store and file snapshot store, the TCP transport, the
// state machine (package fsm), the linearizable read path, write forwarding
// and the node-to-node RPC.
//
// A Node offers what the store adapter (package store) builds the API's
// Store on: Propose applies a log command (package command) through the
// leader (a follower forwards it), Read runs a function against state at
// least as new as a confirmed read index, Status reports the node's view,
// Ready says whether it can serve. It implements api.Membership itself.
// The tools for a stopped node's data directory (restore from a backup,
// recover a lost quorum) are package offline.
//
// One listener per node carries both Raft and the peer RPC: the first byte
// of each connection selects the protocol (see mux.go). The peer RPC
// (optout.peer.v1, HTTP/2 without TLS) forwards writes to the leader and
// fetches read indexes from it.
//
// Read DESIGN.md for why the read path is safe and how write failures are
// classified as "not applied" or "outcome unknown".
package cluster
