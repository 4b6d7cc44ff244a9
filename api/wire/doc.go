// Package wire names the parts of the public wire contract that the proto
// (api/proto/optout/v1) cannot hold: HTTP header and trailer names. The
// server (package api) and the Go client (package client) both use these
// constants, so a name is written once and the client never imports the
// server. It imports nothing.
package wire
