package api

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

var errNoMembership = errors.New("membership changes are not enabled on this server")

func (s *clusterServer) AddMember(ctx context.Context, req *connect.Request[optoutv1.AddMemberRequest]) (*connect.Response[optoutv1.AddMemberResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	if s.members == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errNoMembership)
	}
	idx, err := s.members.AddMember(ctx, req.Msg.Id, req.Msg.RaftAddress, req.Msg.Joining)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return connect.NewResponse(&optoutv1.AddMemberResponse{Index: idx}), nil
}

func (s *clusterServer) PromoteMember(ctx context.Context, req *connect.Request[optoutv1.PromoteMemberRequest]) (*connect.Response[optoutv1.PromoteMemberResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	if s.members == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errNoMembership)
	}
	idx, err := s.members.PromoteMember(ctx, req.Msg.Id)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return connect.NewResponse(&optoutv1.PromoteMemberResponse{Index: idx}), nil
}

func (s *clusterServer) RemoveMember(ctx context.Context, req *connect.Request[optoutv1.RemoveMemberRequest]) (*connect.Response[optoutv1.RemoveMemberResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	if s.members == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errNoMembership)
	}
	idx, err := s.members.RemoveMember(ctx, req.Msg.Id)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return connect.NewResponse(&optoutv1.RemoveMemberResponse{Index: idx}), nil
}

func (s *clusterServer) TransferLeadership(ctx context.Context, req *connect.Request[optoutv1.TransferLeadershipRequest]) (*connect.Response[optoutv1.TransferLeadershipResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	if s.members == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errNoMembership)
	}
	lid, err := s.members.TransferLeadership(ctx, req.Msg.ToId)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return connect.NewResponse(&optoutv1.TransferLeadershipResponse{LeaderId: lid}), nil
}
