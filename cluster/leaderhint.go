package cluster

import (
	"github.com/optoutd/optoutd/fsm"
)

// leaderHint caches the API address of one leader.
type leaderHint struct {
	id, addr string
}

// LeaderAPIAddress is the client API address that the node this node
// believes leads registered, or "" when no leader or no address is known.
// It is a routing hint for clients (not linearizable): the address is read
// from this node's state once per leader and cached.
func (n *Node) LeaderAPIAddress() string {
	if n.removed.Load() {
		return ""
	}
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return ""
	}
	if h := n.leaderHint.Load(); h != nil && h.id == string(id) && h.addr != "" {
		return h.addr
	}
	var addr string
	_ = n.fsm.View(func(r *fsm.Reader) error {
		m, err := r.NodeAPIAddresses()
		addr = m[string(id)]
		return err
	})
	n.leaderHint.Store(&leaderHint{id: string(id), addr: addr})
	return addr
}
