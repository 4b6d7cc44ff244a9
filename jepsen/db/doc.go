// Package db runs an optoutd cluster for the harness and is the only code
// that touches processes, namespaces, firewall rules or Docker.
//
// Two backends implement Backend:
//
//   - Netns (default, needs root): every node is a real `optoutd server`
//     process in its own network namespace, joined to the bridge ojp-br0
//     (10.213.0.0/24) by a veth pair. The harness stays in the host
//     namespace on the bridge (10.213.0.1), so it reaches every node while
//     partitions, nftables input rules inside the node namespaces, cut only
//     node-to-node traffic. An iptables FORWARD ACCEPT rule tagged with the
//     comment "ojp-jepsen" lets bridged traffic past Docker's DROP policy.
//   - Docker: every node is a container of the shipped image on the
//     user-defined network ojp-net (10.214.0.0/24); partitions are the same
//     nftables rules, entered into each container's namespace with nsenter.
//
// Everything created is named with the prefix "ojp-" (Prefix), so
// CleanupNetns and CleanupDocker remove leftovers of a crashed run before a
// new one starts, and everything again at the end.
package db
