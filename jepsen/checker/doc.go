// Package checker decides whether a history is correct.
//
//   - Linearizability (CheckLinearizable): every register key is checked
//     on its own with porcupine against RegisterModel, a sequential
//     specification in which versions are assigned by the system (the Raft
//     log index of the write), so the model never has to guess a number a
//     client did not see. Unknown-outcome writes stay open forever; two
//     optimisations that provably keep the verdict make the common case
//     cheap (see Options and DESIGN.md). A porcupine timeout is a failure.
//   - Set (CheckSet): every acknowledged opt-out is on every node at the
//     end, and nothing that was certainly not applied, or never attempted,
//     is.
//   - Watch (CheckWatch): every acknowledged write arrives on every watch
//     stream exactly once, at its version, in order; nothing arrives that
//     no write could have made; streams agree on what they both covered;
//     and every stream reaches the converged index after healing.
//   - Monotonic (CheckMonotonic): no client sees a key's version go back.
//   - Convergence (CheckConvergence): after healing, every node reports the
//     same applied index and the same state digest.
//   - Enforcement (CheckEnforce): no clean service processed an event
//     after its subject's opt-out was acknowledged unless a re-opt-in or an
//     ALLOW override could have been in force; the cluster's verdicts flag
//     every planted violation and no clean report, and keep every
//     violation they name; forged receipts are refused and false events
//     never allowed or processed.
package checker
