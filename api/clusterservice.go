package api

import (
	"context"
	"encoding/hex"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

type clusterServer struct {
	optoutv1connect.UnimplementedClusterServiceHandler
	store   Store
	members Membership
}

func (s *clusterServer) Status(ctx context.Context, req *connect.Request[optoutv1.StatusRequest]) (*connect.Response[optoutv1.StatusResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	st, err := s.store.Status(ctx)
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.StatusResponse{
		NodeId:       st.NodeID,
		LeaderId:     st.LeaderID,
		Term:         st.Term,
		CommitIndex:  st.CommitIndex,
		AppliedIndex: st.AppliedIndex,
		RaftState:    st.RaftState,

		LastLogIndex:      st.LastLogIndex,
		FirstLogIndex:     st.FirstLogIndex,
		LastSnapshotIndex: st.LastSnapshotIndex,
	}
	for _, n := range st.Nodes {
		out.Nodes = append(out.Nodes, &optoutv1.Node{
			Id: n.ID, RaftAddress: n.RaftAddress, ApiAddress: n.APIAddress, Voter: n.Voter, Leader: n.Leader,
		})
	}
	return connect.NewResponse(out), nil
}

func (s *clusterServer) StateDigest(ctx context.Context, req *connect.Request[optoutv1.StateDigestRequest]) (*connect.Response[optoutv1.StateDigestResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	d, err := s.store.StateDigest(ctx)
	if err != nil {
		return nil, readError(err)
	}
	return connect.NewResponse(&optoutv1.StateDigestResponse{
		NodeId:       d.NodeID,
		AppliedIndex: d.AppliedIndex,
		Sha256:       hex.EncodeToString(d.SHA256[:]),
		Records:      d.Records,
	}), nil
}
