// Package history records what the clients did and saw: one Op per request,
// with its invocation and completion times on a single monotonic clock that
// starts with the run. The checkers read nothing else, so a history written
// to history.jsonl can be re-checked offline.
//
// Outcomes are recorded as the client learned them. A write that failed
// with an unknown outcome keeps the time the client gave up in Return; the
// linearizability checker, not the recorder, decides to treat it as open
// forever.
package history
