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
	store    Store
	metrics  *apiMetrics
	receipts *receipts
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

func (s *optOutServer) SetBatch(ctx context.Context, req *connect.Request[optoutv1.SetBatchRequest]) (*connect.Response[optoutv1.SetBatchResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	n := len(req.Msg.Sets)
	if n == 0 || n > optoutd.MaxBatchSets {
		return nil, rejectedWrite(invalidf("sets: %d entries, must be 1..%d", n, optoutd.MaxBatchSets))
	}
	c := callOf(ctx)
	in := optoutd.SetBatchRequest{Sets: make([]optoutd.SetRequest, n), IdempotencyKey: req.Msg.IdempotencyKey, ClientSchemaVersion: c.schema, Caller: c.caller, DryRun: req.Msg.DryRun}
	for i, m := range req.Msg.Sets {
		r, err := setRequest(m)
		if err != nil {
			return nil, rejectedWrite(invalidf("sets[%d].%s", i, connectMessage(err)))
		}
		in.Sets[i] = r
	}
	res, err := s.store.SetBatch(ctx, in)
	if err != nil && in.DryRun {
		return nil, readError(err) // nothing was proposed
	}
	if err != nil {
		return nil, writeError(ctx, err)
	}
	out := &optoutv1.SetBatchResponse{Version: res.Version, Replayed: res.Replayed, CatalogVersion: res.CatalogVersion, DryRun: res.DryRun, Results: make([]*optoutv1.SetBatchResult, n)}
	for i, it := range res.Items {
		if it.Err == nil {
			out.Results[i] = &optoutv1.SetBatchResult{Record: recordToProto(it.Record),
				PreviousState: optoutv1.State(it.PreviousState), PreviousVersion: it.PreviousVersion}
			continue
		}
		out.Results[i] = &optoutv1.SetBatchResult{ErrorCode: codes[it.Err.Code].String(), ErrorMessage: it.Err.Message, CurrentVersion: it.Err.CurrentVersion}
	}
	return withCatalog(out, res.CatalogVersion), nil
}

func (s *optOutServer) Check(ctx context.Context, req *connect.Request[optoutv1.CheckRequest]) (*connect.Response[optoutv1.CheckResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	k, err := key("", req.Msg.SubjectId, req.Msg.Purpose)
	if err != nil {
		return nil, err
	}
	d, err := s.decide(ctx, []optoutd.Key{k}, false, req.Msg.Receipt)
	if err != nil {
		return nil, readError(err)
	}
	out := checkToProto(d.results[0], d.idx, d.cat)
	if req.Msg.Receipt {
		if out.Receipt, err = s.receipts.sign(d.sk[0], k, d.results[0], d.idx); err != nil {
			return nil, readError(err)
		}
	}
	s.metrics.decided(k.Purpose, d.results[0])
	return withCatalog(out, d.cat), nil
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
	wantReceipts := false
	for i, c := range req.Msg.Checks {
		if err := noUnknownFields(c); err != nil {
			return nil, err
		}
		k, err := key(fmt.Sprintf("checks[%d].", i), c.SubjectId, c.Purpose)
		if err != nil {
			return nil, err
		}
		keys[i] = k
		wantReceipts = wantReceipts || c.Receipt
	}
	d, err := s.decide(ctx, keys, true, wantReceipts)
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.CheckBatchResponse{ReadIndex: d.idx, CatalogVersion: d.cat, Results: make([]*optoutv1.CheckResponse, n)}
	for i, r := range d.results {
		out.Results[i] = checkToProto(r, d.idx, d.cat)
		if req.Msg.Checks[i].Receipt {
			if out.Results[i].Receipt, err = s.receipts.sign(d.sk[i], keys[i], r, d.idx); err != nil {
				return nil, readError(err)
			}
		}
		s.metrics.decided(keys[i].Purpose, r)
	}
	return withCatalog(out, d.cat), nil
}

// decided is a set of decisions made at one read index, with the signing
// key (and each subject's hash) read in the same view when receipts were
// asked for.
type decided struct {
	results  []optoutd.CheckResult
	sk       []signingKey
	idx, cat uint64
}

// decide checks keys at one linearizable read (a batch's errors name the
// check). With withReceipts and no
// receipt key in the cluster yet, it creates the first key and decides
// again, so the key and the decisions come from one view.
func (s *optOutServer) decide(ctx context.Context, keys []optoutd.Key, batch, withReceipts bool) (decided, error) {
	for attempt := 0; ; attempt++ {
		d := decided{results: make([]optoutd.CheckResult, len(keys))}
		haveKey := true
		var err error
		d.idx, d.cat, err = read(ctx, s.store, func(v optoutd.View) error {
			for i, k := range keys {
				r, err := decideNow(v, k)
				if err != nil {
					if batch {
						err = prefixed(fmt.Sprintf("checks[%d]: ", i), err)
					}
					return err
				}
				d.results[i] = r
			}
			if !withReceipts {
				return nil
			}
			var err error
			d.sk, haveKey, err = signingKeys(v, keys)
			return err
		})
		if err != nil || haveKey {
			return d, err
		}
		if attempt > 0 {
			return d, optoutd.Errorf(optoutd.Internal, "the cluster has no receipt key after creating one")
		}
		if err := s.receipts.ensureKey(ctx); err != nil {
			return d, err
		}
	}
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

// connectMessage is the message of a Connect error (what the client sees
// after the code), or err's text.
func connectMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return err.Error()
}
