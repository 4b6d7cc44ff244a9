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
//
// An answer is not a failure. check exits 0 when it says deny; so do
// receipt should-process when it says VERDICT_DISCARD, receipt verify for
// a forged or altered receipt (the status says why), and report when its
// verdicts find violations. Exit 1 means there was no answer (the cluster
// could not be reached, refused the request, or a flag is bad); branch on
// the answer itself, e.g. `-o json | jq -e '.verdict == "VERDICT_PROCESS"'`.
// audit verify is the one exception: a broken hash chain is a fault of the
// cluster, not an answer about a subject, so it exits 1.
//
// The enforcement commands (docs/enforcement.md):
//
//	optoutctl check u1 analytics --receipt
//	optoutctl receipt verify --subject u1 optr1....
//	optoutctl receipt should-process --service mailer --subject u1 optr1....
//	optoutctl fence stats
//	optoutctl override create --purpose analytics --effect deny --reason INC-7 --owner oncall --expires-in 2h
//	optoutctl report --service mailer u1 analytics --version 42 --receipt optr1....
//	optoutctl violations score --window 24h
package main
