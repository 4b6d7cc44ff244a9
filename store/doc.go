// Package store is the adapter between the API and a cluster node: it
// implements what the API declares it needs (api.Store, api.Principals,
// api.Backuper) on a *cluster.Node.
//
// A write is three steps, each owned elsewhere: validate the domain
// request (package optoutd), build its log command (package command),
// propose it through the node (cluster.Node.Propose) and map what applying
// it produced back to the domain (command.ResultError, command.SetResultOf).
// Reads pass through to the node's linearizable read (cluster.Node.Read).
// A backup is a linearizable read followed by one consistent stream of the
// state machine (fsm.FSM.WriteBackup).
//
// Nothing here talks to Raft or the network directly; that is the node's
// job. Error texts that start with "cluster:" kept the words they had when
// this code was part of package cluster. Not to be confused with Raft's log
// and snapshot stores, which the node owns.
package store
