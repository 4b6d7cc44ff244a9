// Package offline holds the tools that work on a stopped node's data
// directory, without a running node: seeding a node of a new cluster from
// a backup (SeedFromBackup, 'optoutd restore') and rewriting the Raft
// configuration of a cluster that lost its quorum (RecoverCluster,
// 'optoutd recover').
//
// Both write what a running node (package cluster) reads when it starts:
// raft.db (hashicorp/raft's log and stable store), snapshots/ (its file
// snapshot store) and fsm.db (the state machine, package fsm), with the
// snapshot file format of package snapfile. Neither talks to the network:
// transport.go is a Transport that only encodes peer addresses, which is
// all hashicorp/raft's snapshot store and RecoverCluster need of one.
//
// seed.go seeds, stage.go makes the result appear in the data directory in
// one step (or not at all), recover.go recovers. DESIGN.md says why they
// work the way they do. Their error texts start with "cluster:", as they
// did when this code was part of package cluster: operators see them from
// 'optoutd restore' and 'optoutd recover'.
package offline
