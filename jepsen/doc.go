// Package jepsen is optoutd's chaos harness: it starts a real cluster of
// optoutd processes (in network namespaces, or in Docker containers built
// from the shipped image), drives a concurrent workload through the real Go
// client, injects faults (partitions, kills, pauses, a lagging follower
// forced onto InstallSnapshot), heals, and then checks what the clients saw:
// linearizability of every key with porcupine, that no acknowledged opt-out
// is lost, that versions never go backwards for a client, and that every
// replica converges to the same state.
//
// The pieces live in subpackages, one job each:
//
//	history   the operation log every check reads (history.jsonl)
//	checker   the register model, the linearizability, set and monotonicity checks
//	db        backends that run the nodes: netns (default) and docker
//	nemesis   fault kinds, the schedule, and the executor that applies them
//	workload  the clients: register and set generators, final reads
//	report    results.json, report.html, latency.png, rate.png, progress
//
// This package wires them into one run (Run) and a tier of runs (RunTier);
// cmd/optout-jepsen is the command line. README.md says how to run it and
// DESIGN.md why the checker's verdicts can be trusted.
package jepsen
