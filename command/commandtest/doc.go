// Package commandtest holds the log-command fixtures that the command and
// fsm tests share: one command of each kind in the current format, entries
// valid under other releases' request limits, and the checked-in files of
// encoded commands (command/testdata/commands) that every later binary
// must still decode and apply.
//
// The Raft log outlives binaries. testdata/commands/v<N>.txt holds
// commands encoded by binaries of format N, one per line ("name hex");
// other-limits.txt holds entries that a release with other request limits
// could have written. A line once written is never changed or regenerated.
// `go test ./command -run TestWriteFixtures -write-fixtures` adds to the
// current format's file the fixtures it lacks (the file of an earlier
// format is never touched).
package commandtest
