package client

import (
	"context"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// AddMember asks the cluster to add a node as a learner. joining says the
// node has no data (see AddMemberRequest.joining).
func (c *Client) AddMember(ctx context.Context, id, raftAddr string, joining bool) (*optoutv1.AddMemberResponse, error) {
	return unaryWrite(ctx, c, &optoutv1.AddMemberRequest{Id: id, RaftAddress: raftAddr, Joining: joining}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.AddMemberRequest]) (*connect.Response[optoutv1.AddMemberResponse], error) {
		return e.cluster.AddMember
	})
}

// PromoteMember makes a learner a voter.
func (c *Client) PromoteMember(ctx context.Context, id string) (*optoutv1.PromoteMemberResponse, error) {
	return unaryWrite(ctx, c, &optoutv1.PromoteMemberRequest{Id: id}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.PromoteMemberRequest]) (*connect.Response[optoutv1.PromoteMemberResponse], error) {
		return e.cluster.PromoteMember
	})
}

// RemoveMember removes a node from the cluster.
func (c *Client) RemoveMember(ctx context.Context, id string) (*optoutv1.RemoveMemberResponse, error) {
	return unaryWrite(ctx, c, &optoutv1.RemoveMemberRequest{Id: id}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.RemoveMemberRequest]) (*connect.Response[optoutv1.RemoveMemberResponse], error) {
		return e.cluster.RemoveMember
	})
}

// TransferLeadership moves leadership (to id, or any caught-up voter).
func (c *Client) TransferLeadership(ctx context.Context, id string) (*optoutv1.TransferLeadershipResponse, error) {
	return unaryWrite(ctx, c, &optoutv1.TransferLeadershipRequest{ToId: id}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.TransferLeadershipRequest]) (*connect.Response[optoutv1.TransferLeadershipResponse], error) {
		return e.cluster.TransferLeadership
	})
}
