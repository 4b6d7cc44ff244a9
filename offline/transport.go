package offline

import (
	"errors"
	"io"

	"github.com/hashicorp/raft"
)

// offlineTransport is the Transport that FileSnapshotStore.Create and
// raft.RecoverCluster need only to encode peers for the legacy snapshot
// format. It encodes an address as its bytes, as NetworkTransport does;
// everything else fails.
type offlineTransport struct{}

var errOffline = errors.New("cluster: offline transport")

var _ raft.Transport = offlineTransport{}

func (offlineTransport) Consumer() <-chan raft.RPC     { return nil }
func (offlineTransport) LocalAddr() raft.ServerAddress { return "" }
func (offlineTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, errOffline
}
func (offlineTransport) AppendEntries(raft.ServerID, raft.ServerAddress, *raft.AppendEntriesRequest, *raft.AppendEntriesResponse) error {
	return errOffline
}
func (offlineTransport) RequestVote(raft.ServerID, raft.ServerAddress, *raft.RequestVoteRequest, *raft.RequestVoteResponse) error {
	return errOffline
}
func (offlineTransport) InstallSnapshot(raft.ServerID, raft.ServerAddress, *raft.InstallSnapshotRequest, *raft.InstallSnapshotResponse, io.Reader) error {
	return errOffline
}
func (offlineTransport) EncodePeer(_ raft.ServerID, a raft.ServerAddress) []byte { return []byte(a) }
func (offlineTransport) DecodePeer(b []byte) raft.ServerAddress                  { return raft.ServerAddress(b) }
func (offlineTransport) SetHeartbeatHandler(func(raft.RPC))                      {}
func (offlineTransport) TimeoutNow(raft.ServerID, raft.ServerAddress, *raft.TimeoutNowRequest, *raft.TimeoutNowResponse) error {
	return errOffline
}
