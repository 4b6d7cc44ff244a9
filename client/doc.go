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
//     caller gave none), so it too is retried after an unknown outcome,
//     and a call whose first attempt's outcome was unknown is never
//     reported as not applied because a retry was refused;
//   - writes start at the leader's endpoint when a node's answer named it
//     (the Optout-Leader header) and it is one of the endpoints, saving the
//     follower's forwarding hop; reads stay spread (leader.go);
//   - Gate and GateBatch, the fail-closed call a service puts in front of
//     processing: any error, timeout or unreachable cluster is a deny;
//   - enforcement: WithReceipt asks Gate for a signed decision receipt to
//     attach to the event; Fence and ProcessFenced re-check a queued or
//     redelivered event at processing time (ShouldProcess) and fail
//     closed; VerifyReceipt, the receipt keys, overrides (break-glass
//     ALLOW, kill-switch DENY, always expiring) and ReportProcessing,
//     ListViolations and ServiceScores (enforcement.go, overrides.go,
//     reports.go; docs/enforcement.md);
//   - Cache (NewCache), which answers Check and Gate from memory and is
//     still linearizable: each lookup takes a fresh read index from a
//     read-index round shared with the lookups waiting beside it (never
//     one that began before it), waits until the cache's Watch stream has
//     delivered every change up to that index, and only then answers from
//     what the stream has not invalidated. When the stream is cut, or has
//     not caught up within CacheOptions.MaxLag, it refuses
//     (ErrCacheDisconnected, ErrCacheLagging) and Gate denies; it never
//     serves older data. It pays off when many lookups ask about the same
//     subjects and writes are few next to reads; CACHE.md gives the
//     argument, the costs and the failure cases.
//
// Every call honours the context's deadline. Every request carries the
// schema version this client was built against and the bearer token, if
// any (header.go). The failover is client.go and retry.go; the gate, and
// the HTTP and Connect middleware built on it, are gate.go and
// middleware.go. The calls are grouped by service, as in package api:
// client.go (OptOutService), catalog.go, audit.go, admin.go, members.go,
// principals.go, snapshot.go, watch.go. The cache is cache.go (options,
// start, stats), cache_lookup.go (Check, Gate, what memory holds),
// cache_watch.go (the stream, its refusals) and readrounds.go (the shared
// read-index rounds).
//
// It imports only the generated API code, the header names of package
// api/wire and the domain's SchemaVersion and validators: never the
// server.
package client
