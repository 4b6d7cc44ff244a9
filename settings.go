package optoutd

import "time"

// SchemaVersion is the version of the API schema this build speaks. Clients
// send theirs in the Optout-Schema-Version header; the cluster can refuse
// clients below a minimum (AdminService.SetMinSchemaVersion). Version 1 was
// the core contract (Set, Check, CheckBatch, Get, Status); version 2 adds the
// purpose catalog, deny-wins writes, idempotency keys, audit and watch;
// version 3 adds enforcement (decision receipts, ShouldProcess, ReadIndex);
// version 4 adds SetBatch and the watch's ChangeGroup (several changes at
// one version).
const SchemaVersion uint32 = 4

// Settings is the replicated cluster configuration.
type Settings struct {
	Initialized      bool
	MinSchemaVersion uint32
	// AuditRetention is how long history is kept; 0 keeps it forever.
	AuditRetention time.Duration
	CatalogVersion uint64
	// AuditCompactedThrough is the newest version removed by retention; a
	// watch must start at or after it.
	AuditCompactedThrough uint64
	// MaxOverride caps an override's lifetime.
	MaxOverride time.Duration
	// OverridesExpired counts overrides that ran to their expiry unrevoked.
	OverridesExpired uint64
}
