// Package optoutd holds the domain of the opt-out store: the types every
// layer shares and the one error type (Error, with a Code) that the state
// machine, the cluster and the API all speak.
//
// One file per concept:
//
//	record.go     Key, State, Record, and the write of one key (SetRequest)
//	decision.go   Decision, CheckResult, Basis, and Decide: the Check rule
//	purpose.go    the catalog: Purpose, DefaultDecision, StarterCatalog
//	audit.go      the history: AuditEntry, AuditReport, StateAtResult
//	principal.go  who may call: Principal, Role, PrincipalKind
//	settings.go   replicated Settings and the API's SchemaVersion
//	status.go     a node's view of the cluster (ClusterStatus, StateDigest)
//	receipt.go    ReceiptKey: the cluster's receipt signing keys
//	override.go   Override, its effects and states, and WithOverrides
//	violation.go  ViolationKind, Violation, ReportBatch, ServiceScore
//	validate.go   the request limits and the Validate* rules
//	view.go       View, the read port the state machine implements
//	errors.go     Error and its Codes
//
// The packages below it each own one job (docs/architecture.md has the
// table and the import rules, which TestImportRules checks):
//
//	command   the Raft log's vocabulary: entry schema, codec, builders
//	fsm       the deterministic state machine: log commands -> bbolt
//	snapfile  the snapshot and backup file format
//	cluster   one Raft node: transport, linearizable reads, forwarding
//	store     the API's Store on a node: requests -> log commands
//	offline   tools for a stopped node's data directory
//	api       the Connect/gRPC service and the one table from Code to wire code
//	receipt   the decision receipt's text form: sign, parse, verify
//	judge     whether a processed event was allowed, from history
//	client    a Go client: failover, the fail-closed Gate, the fence, the cache
//	cmd       wiring only: flags, signals, processes
//
// Nothing here does I/O; it is imported by everything and imports nothing of
// the project.
package optoutd
