// Package snapfile is the snapshot file format: the framed stream in which
// a node sends its state to a lagging follower (a Raft snapshot), keeps its
// own snapshots, and streams a backup (AdminService.Snapshot, 'optoutctl
// snapshot save'):
//
//	"OPTSNAP1" | u32 header length | Header | state bytes | SHA-256
//
// The state bytes are the state machine's bbolt file; the header carries
// the applied index and term, the state's length and, in backups, the
// record count and creation time; the SHA-256 covers header and state.
// format.go writes it (Write) and checks it (ReadHeader, PeekHeader,
// Verify, ReadToFile), so that a truncated or corrupted stream is refused
// before bbolt ever maps it (fsm/DESIGN.md, "Why the snapshot stream is
// framed").
//
// The state machine (package fsm) writes and restores snapshots with it,
// the offline tools (package offline) seed nodes from backups, and
// optoutctl verifies backup files. It imports the log's generated schema
// for Header and nothing else of the product: no bbolt, no Raft, so
// optoutctl can check a file without linking the state machine.
package snapfile
