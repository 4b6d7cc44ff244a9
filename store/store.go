package store

import (
	"context"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// Store is the API's view of one cluster node. It implements api.Store,
// api.Principals and api.Backuper; the node itself implements
// api.Membership.
type Store struct {
	node *cluster.Node
}

// New returns the store of node.
func New(node *cluster.Node) *Store { return &Store{node: node} }

// Node is the node this store proposes through.
func (s *Store) Node() *cluster.Node { return s.node }

// write proposes one command and turns a rule violation the state machine
// reported into the domain error (transport failures are already domain
// errors; see cluster.Node.Propose).
func (s *Store) write(ctx context.Context, payload proto.Message) (*fsmv1.Result, error) {
	res, err := s.node.Propose(ctx, payload)
	if err != nil {
		return nil, err
	}
	if err := command.ResultError(res); err != nil {
		return nil, err
	}
	return res, nil
}

// Reads and the node's own views pass through to the node.

// Read runs fn against linearizable state (see cluster.Node.Read).
func (s *Store) Read(ctx context.Context, fn func(optoutd.View) error) (uint64, error) {
	return s.node.Read(ctx, fn)
}

// ReadLocal runs fn against this node's current state, without a read
// index.
func (s *Store) ReadLocal(fn func(optoutd.View) error) error { return s.node.ReadLocal(fn) }

// WaitApplied blocks until this node has applied index, or ctx ends.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	return s.node.WaitApplied(ctx, index)
}

// Status reports this node's view of the cluster.
func (s *Store) Status(ctx context.Context) (optoutd.ClusterStatus, error) { return s.node.Status(ctx) }

// LeaderAPIAddress is the leader's API address, a routing hint (api.LeaderHinter).
func (s *Store) LeaderAPIAddress() string { return s.node.LeaderAPIAddress() }

// StateDigest hashes this node's local state.
func (s *Store) StateDigest(ctx context.Context) (optoutd.StateDigest, error) {
	return s.node.StateDigest(ctx)
}

// Ready returns nil when the node can serve linearizable requests.
func (s *Store) Ready() error { return s.node.Ready() }
