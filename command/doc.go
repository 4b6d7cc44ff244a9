// Package command owns the Raft log's vocabulary: the schema of a log entry
// (proto/optout/fsm/v1/command.proto, generated into gen/), how an entry is
// encoded and decoded, the typed builders that turn a domain request into
// the command that carries it, and the mapping of what applying a command
// produced back to the domain.
//
// # An entry
//
// Every Raft log entry of type LogCommand is one Command envelope: a format
// version, a CommandType, the leader's wall-clock stamp and the payload
// message of that type. The pairing of types and payload messages is one
// table (types.go); Encode takes the type from the payload, Decode the
// payload from the type, and nobody pairs them by hand:
//
//	data, err := command.Encode(command.Set(req, window), time.Time{})
//
// The proposer's stamp never reaches the log: the leader replaces it with
// its own clock (Restamp) before it proposes, so apply reads the same time
// on every replica.
//
// Decode refuses what this binary cannot know: an empty entry, an unknown
// type, a format newer than FormatVersion, fields it does not know, bytes
// that do not parse. The state machine (package fsm) halts on any of them
// rather than skip the entry.
//
// # Builders and results
//
// build.go has one builder per request kind (Set, DefinePurpose,
// UpdateSettings, EraseSubject, PutPrincipal, DeletePrincipal) and the
// commands a node proposes for itself (InitCluster, TermStart,
// RegisterNode). They check nothing: the caller validated the request.
// result.go maps a Result back: ResultError turns a rule violation into the
// domain error, SetResultOf and SettingsOf read what a write produced.
// convert.go converts the stored forms (records, purposes, audit entries,
// principals) to the domain types, for the state machine's reads and for
// results. The domain's enums share the log's numbers and convert with a
// plain Go conversion (TestEnumNumbering).
//
// # Compatibility
//
// Entries and snapshots outlive binaries. A field is never renumbered or
// reused; FormatVersion is bumped only for a change old nodes must not
// silently misread. testdata/commands holds commands encoded by every
// format so far, never regenerated: they must keep decoding, and the
// current format's must keep encoding to the same bytes
// (TestCommandFixturesAreByteIdentical, TestBuildersEncodeLikeTheFixtures).
// DESIGN.md says why. The fixtures are shared with fsm's tests through
// package commandtest.
//
// The package imports the domain (package optoutd) and protobuf only: no
// storage, no Raft, no networking.
package command
