package optoutd

import "time"

// ReceiptKey is one of the cluster's receipt signing keys. Seed is the
// Ed25519 private seed: it lives only in replicated state (and so in
// snapshots and backups) and never leaves the server.
type ReceiptKey struct {
	ID        uint32
	Seed      []byte
	CreatedAt time.Time
	// Version is the log index that added the key.
	Version uint64
	Current bool
}

// ReceiptSubjectHashBytes is how many bytes of the keyed subject hash a
// receipt carries: 128 bits, enough that no two subjects collide in
// practice, and short enough to keep receipts compact.
const ReceiptSubjectHashBytes = 16
