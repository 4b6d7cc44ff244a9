// Package nemesis injects faults into a running cluster.
//
// A Kind is one named fault (partition-leader, kill, pause, ...). Its Begin
// chooses targets at the moment the fault starts (the current leader, a
// follower) and returns an Effect: nodes to hold down or paused, and drops
// that make up a partition. Plan builds a schedule, one fault at a time or
// overlapping; the Executor runs it, combining the effects of every active
// fault (a node is down if any fault holds it down, the partition is the
// union of drops) and reconciling the cluster after every change, so
// overlapping faults compose without special cases and everything is
// healed before Run returns.
//
// To add a fault kind, add an entry to the kinds registry in kinds.go and a
// line to jepsen/README.md. The "clock-skew" name is reserved: the nodes
// share the host's clock, and Lookup says so.
package nemesis
