package api

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

type optOutServer struct {
	optoutv1connect.UnimplementedOptOutServiceHandler
	store   Store
	metrics *apiMetrics
}

func (s *optOutServer) Set(ctx context.Context, req *connect.Request[optoutv1.SetRequest]) (*connect.Response[optoutv1.SetResponse], error) {
	in, err := setRequest(req.Msg)
	if err != nil {
		return nil, rejectedWrite(err)
	}
	c := callOf(ctx)
	in.ClientSchemaVersion, in.Caller = c.schema, c.caller
	res, err := s.store.Set(ctx, in)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return withCatalog(&optoutv1.SetResponse{
		Version:        res.Record.Version,
		Record:         recordToProto(res.Record),
		Replayed:       res.Replayed,
		CatalogVersion: res.CatalogVersion,
	}, res.CatalogVersion), nil
}

func (s *optOutServer) Check(ctx context.Context, req *connect.Request[optoutv1.CheckRequest]) (*connect.Response[optoutv1.CheckResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	k, err := key("", req.Msg.SubjectId, req.Msg.Purpose)
	if err != nil {
		return nil, err
	}
	var res optoutd.CheckResult
	idx, cat, err := read(ctx, s.store, func(v optoutd.View) (err error) {
		res, err = v.Check(k)
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	s.metrics.decided(k.Purpose, res.Decision)
	return withCatalog(checkToProto(res, idx, cat), cat), nil
}

func (s *optOutServer) CheckBatch(ctx context.Context, req *connect.Request[optoutv1.CheckBatchRequest]) (*connect.Response[optoutv1.CheckBatchResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	n := len(req.Msg.Checks)
	if n == 0 || n > optoutd.MaxBatchChecks {
		return nil, invalidf("checks: %d entries, must be 1..%d", n, optoutd.MaxBatchChecks)
	}
	keys := make([]optoutd.Key, n)
	for i, c := range req.Msg.Checks {
		if err := noUnknownFields(c); err != nil {
			return nil, err
		}
		k, err := key(fmt.Sprintf("checks[%d].", i), c.SubjectId, c.Purpose)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	results := make([]optoutd.CheckResult, n)
	idx, cat, err := read(ctx, s.store, func(v optoutd.View) error {
		for i, k := range keys {
			r, err := v.Check(k)
			if err != nil {
				return prefixed(fmt.Sprintf("checks[%d]: ", i), err)
			}
			results[i] = r
		}
		return nil
	})
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.CheckBatchResponse{ReadIndex: idx, CatalogVersion: cat, Results: make([]*optoutv1.CheckResponse, n)}
	for i, r := range results {
		out.Results[i] = checkToProto(r, idx, cat)
		s.metrics.decided(keys[i].Purpose, r.Decision)
	}
	return withCatalog(out, cat), nil
}

func (s *optOutServer) Get(ctx context.Context, req *connect.Request[optoutv1.GetRequest]) (*connect.Response[optoutv1.GetResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	k, err := key("", req.Msg.SubjectId, req.Msg.Purpose)
	if err != nil {
		return nil, err
	}
	var (
		rec   optoutd.Record
		found bool
	)
	idx, cat, err := read(ctx, s.store, func(v optoutd.View) (err error) {
		if _, err := v.Purpose(k.Purpose); err != nil {
			return err
		}
		rec, found, err = v.Get(k)
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	if !found {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no record for this subject_id and purpose %q (as of read index %d)", k.Purpose, idx))
	}
	return withCatalog(&optoutv1.GetResponse{Record: recordToProto(rec), ReadIndex: idx}, cat), nil
}

func (s *optOutServer) EraseSubject(ctx context.Context, req *connect.Request[optoutv1.EraseSubjectRequest]) (*connect.Response[optoutv1.EraseSubjectResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	if err := optoutd.ValidateSubjectID(req.Msg.SubjectId); err != nil {
		return nil, rejectedWrite(invalidf("%s", optoutd.ErrorMessage(err)))
	}
	if err := optoutd.ValidateText("reason", req.Msg.Reason, optoutd.MaxReasonBytes); err != nil {
		return nil, rejectedWrite(invalidf("%s", optoutd.ErrorMessage(err)))
	}
	c := callOf(ctx)
	ver, n, err := s.store.EraseSubject(ctx, req.Msg.SubjectId, req.Msg.Reason, c.schema, c.caller)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return connect.NewResponse(&optoutv1.EraseSubjectResponse{Version: ver, ErasedRecords: n}), nil
}

// prefixed adds the index of a batch entry to a domain error's message.
func prefixed(prefix string, err error) error {
	var de *optoutd.Error
	if errors.As(err, &de) {
		cp := *de
		cp.Message = prefix + cp.Message
		return &cp
	}
	return err
}
