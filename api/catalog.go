package api

import (
	"context"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

type catalogServer struct {
	optoutv1connect.UnimplementedCatalogServiceHandler
	store Store
}

func (s *catalogServer) DefinePurpose(ctx context.Context, req *connect.Request[optoutv1.DefinePurposeRequest]) (*connect.Response[optoutv1.DefinePurposeResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	p := req.Msg.Purpose
	if p == nil {
		return nil, rejectedWrite(invalidf("purpose: must be set"))
	}
	if err := noUnknownFields(p); err != nil {
		return nil, rejectedWrite(err)
	}
	def := optoutd.Purpose{Name: p.Name, Description: p.Description, Default: optoutd.DefaultDecision(p.DefaultDecision)}
	if p.DefaultDecision != optoutv1.Default_DEFAULT_ALLOW && p.DefaultDecision != optoutv1.Default_DEFAULT_DENY {
		def.Default = optoutd.DefaultUnspecified
	}
	if err := optoutd.ValidatePurposeDef(def); err != nil {
		return nil, rejectedWrite(invalidf("purpose.%s", optoutd.ErrorMessage(err)))
	}
	c := callOf(ctx)
	stored, cat, err := s.store.DefinePurpose(ctx, def, req.Msg.ExpectedCatalogVersion, c.schema, c.caller)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return withCatalog(&optoutv1.DefinePurposeResponse{Purpose: purposeToProto(stored), CatalogVersion: cat}, cat), nil
}

func (s *catalogServer) ListPurposes(ctx context.Context, req *connect.Request[optoutv1.ListPurposesRequest]) (*connect.Response[optoutv1.ListPurposesResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	var ps []optoutd.Purpose
	idx, cat, err := read(ctx, s.store, func(v optoutd.View) (err error) {
		ps, err = v.Purposes()
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.ListPurposesResponse{CatalogVersion: cat, ReadIndex: idx}
	for _, p := range ps {
		out.Purposes = append(out.Purposes, purposeToProto(p))
	}
	return withCatalog(out, cat), nil
}

func (s *catalogServer) GetPurpose(ctx context.Context, req *connect.Request[optoutv1.GetPurposeRequest]) (*connect.Response[optoutv1.GetPurposeResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	if err := optoutd.ValidatePurpose(req.Msg.Name); err != nil {
		return nil, invalidf("name: %s", optoutd.ErrorMessage(err))
	}
	var p optoutd.Purpose
	_, cat, err := read(ctx, s.store, func(v optoutd.View) (err error) {
		p, err = v.Purpose(req.Msg.Name)
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	return withCatalog(&optoutv1.GetPurposeResponse{Purpose: purposeToProto(p), CatalogVersion: cat}, cat), nil
}
