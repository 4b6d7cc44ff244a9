// Command optout-jepsen runs optoutd's chaos harness: a real cluster, a
// concurrent workload, faults, and the checkers of package jepsen.
//
//	go run ./jepsen/cmd/optout-jepsen --nemesis partition-leader,kill,pause --time 60s
//	go run ./jepsen/cmd/optout-jepsen --tier ci
//	go run ./jepsen/cmd/optout-jepsen --long
//
// It needs root (network namespaces, nftables); without it, it prints a
// SKIP line and exits 0. Exit status 1 means an anomaly, a missed negative
// control or a harness failure; 2 means bad flags. Every flag can also be
// set as OPTOUT_JEPSEN_<FLAG>. See jepsen/README.md.
package main
