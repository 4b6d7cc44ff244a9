package api

import (
	"context"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// ReadIndex is a linearizable read that reads nothing: the same read-index
// round a Check makes (a commit index captured before a quorum confirms
// this node's leader, then a wait until this node has applied it), after
// the same schema-version gate. Every write acknowledged before the call
// began is at or below the index it returns. A client cache compares it
// with its Watch stream's progress: once the stream has delivered every
// change up to the index, the cache's memory is as new as a Check would
// be (client/CACHE.md).
func (s *optOutServer) ReadIndex(ctx context.Context, req *connect.Request[optoutv1.ReadIndexRequest]) (*connect.Response[optoutv1.ReadIndexResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	idx, cat, err := read(ctx, s.store, func(optoutd.View) error { return nil })
	if err != nil {
		return nil, readError(err)
	}
	return withCatalog(&optoutv1.ReadIndexResponse{ReadIndex: idx, CatalogVersion: cat}, cat), nil
}
