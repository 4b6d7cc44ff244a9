// Package optoutd holds the domain of the opt-out store: the types every
// layer shares (Key, Record, State, Decision) and the one error type (Error,
// with a Code) that the state machine, the cluster and the API all speak.
//
// The packages below it each own one job:
//
//	fsm      the deterministic state machine: Raft log entries -> bbolt
//	cluster  Raft, the peer transport, linearizable reads, write forwarding
//	api      the Connect/gRPC service and the one table from Code to wire code
//	client   a Go client that sends the schema headers and tries each endpoint
//	cmd      wiring only: flags, signals, processes
//
// Nothing here does I/O; it is imported by everything and imports nothing of
// the project.
package optoutd
