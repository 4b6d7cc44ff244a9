package optoutd

// ClusterStatus is one node's view of the cluster.
type ClusterStatus struct {
	NodeID       string
	LeaderID     string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	RaftState    string
	Nodes        []NodeStatus

	LastLogIndex      uint64
	FirstLogIndex     uint64
	LastSnapshotIndex uint64
}

// NodeStatus describes one member of the Raft configuration.
type NodeStatus struct {
	ID          string
	RaftAddress string
	APIAddress  string
	Voter       bool
	Leader      bool
}

// StateDigest summarises one replica's state for convergence checks.
type StateDigest struct {
	NodeID       string
	AppliedIndex uint64
	SHA256       [32]byte
	Records      uint64
}
