// Package api serves the public wire contract, optout.v1, over Connect:
// the Connect protocol (curl-able JSON or binary, GET for side-effect-free
// calls), gRPC and gRPC-Web, on one port, over HTTP/1.1 and h2c.
//
// The handlers translate between wire messages and the domain types of the
// root package, validate every field (naming it in the error), and reach
// the cluster only through the Store interface declared here. Every domain
// error becomes a wire code in one place, errors.go.
//
// The JSON codec differs from connect-go's default in two ways, both on
// purpose: responses include zero values ("version":"0"), so a curl user
// sees every field, and requests with unknown fields are rejected, so a
// typo such as "expectedVerison" fails instead of silently turning a
// compare-and-set into a blind write.
package api
