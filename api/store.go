package api

import (
	"context"
	"time"

	"github.com/optoutd/optoutd"
)

// Store is what the API needs from the cluster. store.Store implements it on
// a cluster node. Every error is an *optoutd.Error or a context error. An
// error from a node that was removed from the cluster also wraps an error
// with a method NodeRemoved() bool that returns true
// (cluster.ErrNodeRemoved): the API then tells the client, in the
// Optout-Node-Removed header, to ask another node.
type Store interface {
	// Set applies one write.
	Set(ctx context.Context, req optoutd.SetRequest) (optoutd.SetResult, error)
	SetBatch(ctx context.Context, req optoutd.SetBatchRequest) (optoutd.SetBatchResult, error)
	// Read runs fn against linearizable state and returns the read index.
	Read(ctx context.Context, fn func(optoutd.View) error) (uint64, error)
	// ReadLocal runs fn against this node's current state, without a read
	// index (Watch streams from it and reports how fresh it is).
	ReadLocal(fn func(optoutd.View) error) error
	// WaitApplied blocks until this node has applied index, or ctx ends.
	WaitApplied(ctx context.Context, index uint64) error
	// DefinePurpose creates or redefines a purpose; it returns the stored
	// purpose and the catalog version.
	DefinePurpose(ctx context.Context, p optoutd.Purpose, expectedCatalog *uint64, client uint32, caller string) (optoutd.Purpose, uint64, error)
	// UpdateSettings changes replicated settings; nil fields stay.
	UpdateSettings(ctx context.Context, minSchema *uint32, retention *time.Duration, client uint32, caller string) (optoutd.Settings, error)
	// EraseSubject erases a subject and returns the erasure's version and
	// how many records it removed.
	EraseSubject(ctx context.Context, subject, reason string, client uint32, caller string) (uint64, uint32, error)
	// RotateReceiptKey adds a receipt signing key from seed (32 bytes) and
	// makes it current (with onlyIfNone: only if there is none); it
	// returns the current key's id.
	RotateReceiptKey(ctx context.Context, seed []byte, onlyIfNone bool, client uint32, caller string) (uint32, error)
	// CreateOverride opens an override; EndOverride revokes one (or, with
	// expire, records that it ran to its expiry); SetMaxOverride caps their
	// lifetime.
	CreateOverride(ctx context.Context, o optoutd.Override, client uint32, caller string) (optoutd.Override, error)
	EndOverride(ctx context.Context, id uint64, expire bool, reason string, client uint32, caller string) (optoutd.Override, error)
	SetMaxOverride(ctx context.Context, max time.Duration, client uint32, caller string) (optoutd.Settings, error)
	// RecordReports records a judged report batch; it returns the log
	// index (violation ids are index<<16 | the report's place).
	RecordReports(ctx context.Context, b optoutd.ReportBatch, client uint32, caller string) (uint64, error)
	// Status reports the answering node's view of the cluster.
	Status(ctx context.Context) (optoutd.ClusterStatus, error)
	// StateDigest hashes the answering node's local state.
	StateDigest(ctx context.Context) (optoutd.StateDigest, error)
	// Ready returns nil when the node can serve linearizable requests.
	Ready() error
}

// Membership is what ClusterService's membership calls need; cluster.Node
// implements it. It is separate
// from Store so a read-only deployment (or a test) can leave it out; the
// calls then answer UNIMPLEMENTED.
type Membership interface {
	AddMember(ctx context.Context, id, raftAddr string, joining bool) (uint64, error)
	PromoteMember(ctx context.Context, id string) (uint64, error)
	RemoveMember(ctx context.Context, id string) (uint64, error)
	TransferLeadership(ctx context.Context, id string) (string, error)
}

// Principals is what authentication and the principal admin calls need;
// store.Store implements it.
// Lookups read this node's local state (a revocation reaches a node when it
// applies it); the rest goes through Raft.
type Principals interface {
	LookupToken(sha256 []byte) (optoutd.Principal, bool, error)
	LookupName(name string) (optoutd.Principal, bool, error)
	// Sync waits until this node has applied everything committed before
	// the call (a linearizable no-op read). Authentication calls it before
	// refusing an unknown credential, so a token created before a request
	// is never refused by a lagging node.
	Sync(ctx context.Context) error
	ListPrincipals(ctx context.Context) ([]optoutd.Principal, error)
	PutPrincipal(ctx context.Context, p optoutd.Principal, createOnly bool, client uint32, caller string) error
	DeletePrincipal(ctx context.Context, name string, client uint32, caller string) error
}
