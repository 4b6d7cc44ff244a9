// Package client is the Go client of optoutd. It wraps the generated Connect
// clients with what every service that gates events on optoutd needs:
//
//   - a list of endpoints, tried in turn, starting with the last one that
//     answered;
//   - failover that never repeats a write unless the first attempt certainly
//     did not apply it (a refused connection, or a WriteOutcome detail of
//     OUTCOME_NOT_APPLIED); an unknown outcome is returned to the caller as
//     is, with IsOutcomeUnknown reporting it;
//   - reads retried on another endpoint when one is unreachable, and every
//     retryable call retried with jittered exponential backoff until the
//     context's deadline or DefaultRetryBudget (see retry.go);
//   - Set always carries an idempotency key (one is made up when the
//     caller gave none), so it too is retried after an unknown outcome;
//   - Gate and GateBatch, the fail-closed call a service puts in front of
//     processing: any error, timeout or unreachable cluster is a deny.
//
// Every call honours the context's deadline.
package client
