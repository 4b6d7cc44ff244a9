// Command optoutctl is the command-line client of optoutd.
//
//	optoutctl --endpoints 127.0.0.1:7001,127.0.0.1:7002 set u1 email_marketing opted_out --source cli
//	optoutctl check u1 email_marketing
//	optoutctl get u1 email_marketing
//	optoutctl status
//
// --endpoints (OPTOUT_ENDPOINTS) lists nodes to try in turn. Output is the
// response as JSON; errors go to stderr with the wire code, and the exit
// status is 1.
package main
