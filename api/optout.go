package api

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

type optOutServer struct {
	optoutv1connect.UnimplementedOptOutServiceHandler
	store Store
}

func (s *optOutServer) Set(ctx context.Context, req *connect.Request[optoutv1.SetRequest]) (*connect.Response[optoutv1.SetResponse], error) {
	in, err := setRequest(req.Msg)
	if err != nil {
		return nil, rejectedWrite(err)
	}
	rec, err := s.store.Set(ctx, in)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return connect.NewResponse(&optoutv1.SetResponse{Version: rec.Version, Record: recordToProto(rec)}), nil
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
	idx, err := s.store.Read(ctx, func(v optoutd.View) error {
		rec, _, err := v.Get(k)
		res = optoutd.Decide(rec)
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	return connect.NewResponse(checkToProto(res, idx)), nil
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
	idx, err := s.store.Read(ctx, func(v optoutd.View) error {
		for i, k := range keys {
			rec, _, err := v.Get(k)
			if err != nil {
				return err
			}
			results[i] = optoutd.Decide(rec)
		}
		return nil
	})
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.CheckBatchResponse{ReadIndex: idx, Results: make([]*optoutv1.CheckResponse, n)}
	for i, r := range results {
		out.Results[i] = checkToProto(r, idx)
	}
	return connect.NewResponse(out), nil
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
	idx, err := s.store.Read(ctx, func(v optoutd.View) (err error) {
		rec, found, err = v.Get(k)
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	if !found {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no record for this subject_id and purpose %q (as of read index %d)", k.Purpose, idx))
	}
	return connect.NewResponse(&optoutv1.GetResponse{Record: recordToProto(rec), ReadIndex: idx}), nil
}
