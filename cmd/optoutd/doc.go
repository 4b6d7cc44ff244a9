// Command optoutd runs an optoutd node, or a whole local cluster for
// development.
//
//	optoutd server --id n1 --data-dir D --api-addr 127.0.0.1:7001 \
//	  --raft-addr 127.0.0.1:7101 \
//	  --initial-cluster n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103
//	optoutd dev
//	optoutd help server
//
// Every flag can also be set through an environment variable: OPTOUT_ and
// the flag name in upper case with dashes as underscores (--data-dir is
// OPTOUT_DATA_DIR). A flag on the command line wins over the environment.
// Help goes to stdout with exit status 0; a usage mistake prints one error
// and the command's usage on stderr and exits 2; a failure exits 1.
//
// This package only wires: flags, logging, signals, listeners. Main holds
// ParseFlags and Run (and Main, which main calls) so that tests run the
// real program in-process.
package main
