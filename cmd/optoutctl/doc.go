// Command optoutctl is the command-line client of optoutd.
//
//	optoutctl --endpoints 127.0.0.1:7001,127.0.0.1:7002 set u1 email_marketing opted_out --source cli
//	optoutctl check u1 email_marketing -o json
//	optoutctl get u1 email_marketing
//	optoutctl members list -o table
//	optoutctl help set
//
// --endpoints (OPTOUT_ENDPOINTS) lists nodes to try in turn. The global
// flags (--endpoints, --timeout, --output/-o, --cacert, --cert, --key,
// --token) go before or after the command. Every result goes through one
// output layer (output.go): indented JSON by default, -o json for one
// compact object per line, -o table for aligned columns; it is re-encoded
// by encoding/json, so it is the same bytes from every build.
//
// Exit status: 0 on success and for help (--help, -h and `help` print on
// stdout); 1 when a command fails, with the wire code on stderr (and, for a
// write, whether it may have been applied); 2 for a usage mistake, with one
// error line and the command's usage on stderr.
package main
