// Package workload drives the cluster the way clients would, through the
// product's Go client, and records every operation in a history.
//
// Workers are bound to nodes (worker i talks only to node i mod n), one
// request at a time. Each picks an operation from a Mix:
//
//   - Register: Get, Check, blind Set and compare-and-set (expected_version
//     = the last version this worker saw) on a few contended keys. Every
//     write carries a unique tag in `source`.
//   - Set: a blind opt-out of a fresh key, never overwritten.
//
// Write errors are classified with client.Outcome: NOT_APPLIED (including
// a refused dial) is certain, everything else is unknown; a CAS conflict
// is a Mismatch carrying the current version. A worker whose request ended
// unknown moves to a new logical process, since the old request may still
// take effect at any time.
//
// After the run, FinalReads read every key on every node through
// single-endpoint clients.
//
// Watchers (StartWatchers) are not workers: one per node follows the
// harness purpose's change stream with the product client's Watch from
// version 0, through every fault, until it has caught up with the index the
// healed cluster converged on. What they received goes to
// checker.CheckWatch.
//
// Enforce (NewEnforce) is the other workload, chosen instead of the
// workers: producers Gate events with receipts onto Queues that delay and
// redeliver, clean services fence each delivery with ProcessFenced and
// report what they processed, flippers opt subjects out and back in, an
// overrider opens short ALLOW overrides, false and forged events are
// injected, and a sloppy service plants violations. Its history goes to
// checker.CheckEnforce.
package workload
