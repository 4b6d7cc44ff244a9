// Package fsm is optoutd's replicated state machine: the deterministic step
// from committed Raft log entries to the records stored in bbolt.
//
// # The apply contract
//
// apply(tx, entry) is a pure function of the transaction's state and the
// entry (its index, term and decoded command). It reads no clock (the
// leader stamps the time into the command before proposing it), draws no
// randomness, iterates no Go maps into results, and does no I/O but the
// bbolt transaction. Every replica applying the same log therefore holds the
// same bytes; ClusterService.StateDigest checks that.
//
// A record's version is the log index of the write that last changed it, so
// versions are unique and monotonic across the whole cluster.
//
// # Durability and replay
//
// FSM implements raft.BatchingFSM. Each batch is one bbolt transaction that
// also stores the last applied index. With Config.SyncInterval the commit
// is not fsynced (the file is, every interval and on Close), and a file
// that a machine crash may have torn is removed on Open and rebuilt from the
// newest snapshot and the log (durability.go, DESIGN.md); without it, bbolt
// fsyncs on commit. After a restart hashicorp/raft replays the log from its
// last snapshot, and entries at or below the stored index are skipped, so
// nothing is applied twice.
//
// # Unknown commands halt
//
// An entry that does not decode (unknown type, newer format, unknown fields,
// garbage) halts the state machine: the batch is rolled back, the error is
// logged loudly and reported through Config.OnHalt, reads fail with
// ErrHalted, and Apply blocks until Close. A restart meets the same entry
// again. An entry is never skipped, because skipping a rule a newer binary
// wrote (say, an opt-out) would silently diverge this replica.
//
// # Snapshots
//
// Snapshot opens a bbolt read transaction and Persist streams it (framed
// with a header and a SHA-256, see package snapfile) while writes continue.
// Restore checks the whole stream before renaming it over the live file, so
// a corrupt or truncated snapshot leaves the current state untouched.
//
// Commands are decoded by package command, which owns the log's schema;
// this package applies them and stores their effects.
//
// Tests: testdata/apply/*.txt are datadriven scripts (regenerate with
// `go test ./fsm -run TestApplyScripts -rewrite`), command's FuzzDecode
// covers the command decoder, a rapid property test covers snapshot round
// trips, and testdata/snapshots pins the snapshot stream's bytes.
package fsm
