// Package judge decides whether what a service reports it processed was
// allowed: was the subject opted out of the purpose at the point of
// processing (a version or a time), was there a receipt, was it genuine,
// for this subject and purpose, an allow, and from before an opt-out?
//
// It reads one linearizable view of the state and history and returns a
// batch of verdicts; the API proposes the batch, and the state machine
// only stores it, so a violation is the same record on every replica. It
// does no I/O and reads no clock (the caller passes "now").
package judge
