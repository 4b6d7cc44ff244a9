package api

import (
	"context"

	"github.com/optoutd/optoutd"
)

// Store is what the API needs from the cluster. cluster.Node implements it.
type Store interface {
	// Set applies one write; errors are *optoutd.Error (or a context error).
	Set(ctx context.Context, req optoutd.SetRequest) (optoutd.Record, error)
	// Read runs fn against linearizable state and returns the read index.
	Read(ctx context.Context, fn func(optoutd.View) error) (uint64, error)
	// Status reports the answering node's view of the cluster.
	Status(ctx context.Context) (optoutd.ClusterStatus, error)
	// StateDigest hashes the answering node's local state.
	StateDigest(ctx context.Context) (optoutd.StateDigest, error)
	// Ready returns nil when the node can serve linearizable requests.
	Ready() error
}
