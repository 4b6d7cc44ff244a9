package api

import (
	"context"
	"crypto/rand"
	"fmt"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/optoutd/optoutd/receipt"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type enforcementServer struct {
	optoutv1connect.UnimplementedEnforcementServiceHandler
	store    Store
	receipts *receipts
	fence    *fenceCounts
}

func (s *enforcementServer) VerifyReceipt(ctx context.Context, req *connect.Request[optoutv1.VerifyReceiptRequest]) (*connect.Response[optoutv1.VerifyReceiptResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	v, err := s.receipts.verify(ctx, req.Msg.Receipt, req.Msg.SubjectId)
	if err != nil {
		return nil, readError(err)
	}
	return connect.NewResponse(v.out), nil
}

func (s *enforcementServer) ShouldProcess(ctx context.Context, req *connect.Request[optoutv1.ShouldProcessRequest]) (*connect.Response[optoutv1.ShouldProcessResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	if err := optoutd.ValidateService(req.Msg.Service); err != nil {
		return nil, readError(err)
	}
	v, err := s.receipts.verify(ctx, req.Msg.Receipt, req.Msg.SubjectId)
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.ShouldProcessResponse{Verdict: optoutv1.Verdict_VERDICT_DISCARD, Verification: v.out}
	purpose := "" // a label only once the cluster's signature vouches for it
	switch {
	case !v.valid():
		out.Reason = optoutv1.DiscardReason_DISCARD_REASON_INVALID_RECEIPT
	case v.parsed.Body.Decision != optoutv1.Decision_DECISION_ALLOW:
		purpose, out.Reason = v.parsed.Body.Purpose, optoutv1.DiscardReason_DISCARD_REASON_DENIED_AT_RECEIPT
	case v.out.CurrentDecision != optoutv1.Decision_DECISION_ALLOW:
		purpose, out.Reason = v.parsed.Body.Purpose, optoutv1.DiscardReason_DISCARD_REASON_DENIED_NOW
	default:
		purpose, out.Verdict = v.parsed.Body.Purpose, optoutv1.Verdict_VERDICT_PROCESS
	}
	s.fence.count(req.Msg.Service, purpose, out.Verdict, out.Reason)
	return connect.NewResponse(out), nil
}

func (s *enforcementServer) ListReceiptKeys(ctx context.Context, req *connect.Request[optoutv1.ListReceiptKeysRequest]) (*connect.Response[optoutv1.ListReceiptKeysResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	var keys []optoutd.ReceiptKey
	if _, err := s.store.Read(ctx, func(v optoutd.View) (err error) {
		keys, err = v.ReceiptKeys()
		return err
	}); err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.ListReceiptKeysResponse{}
	for _, k := range keys {
		out.Keys = append(out.Keys, receiptKeyToProto(k))
	}
	return connect.NewResponse(out), nil
}

func (s *enforcementServer) RotateReceiptKey(ctx context.Context, req *connect.Request[optoutv1.RotateReceiptKeyRequest]) (*connect.Response[optoutv1.RotateReceiptKeyResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return nil, writeError(ctx, fmt.Errorf("receipt key seed: %w", err))
	}
	c := callOf(ctx)
	id, err := s.store.RotateReceiptKey(ctx, seed, false, c.schema, c.caller)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	// Read the key back for its creation time (the leader's stamp); the
	// rotation applied even if this read fails, so it answers without it.
	out := &optoutv1.ReceiptKey{KeyId: id, PublicKey: receipt.PublicKey(seed), Current: true}
	var key optoutd.ReceiptKey
	var found bool
	if _, rerr := s.store.Read(ctx, func(v optoutd.View) (err error) {
		key, found, err = v.ReceiptKey(id)
		return err
	}); rerr == nil && found {
		out = receiptKeyToProto(key)
	}
	return connect.NewResponse(&optoutv1.RotateReceiptKeyResponse{Key: out}), nil
}

func (s *enforcementServer) GetFenceStats(_ context.Context, req *connect.Request[optoutv1.GetFenceStatsRequest]) (*connect.Response[optoutv1.GetFenceStatsResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	counts, up := s.fence.snapshot()
	return connect.NewResponse(&optoutv1.GetFenceStatsResponse{
		NodeId: s.receipts.nodeID, Counts: counts, Uptime: durationpb.New(up),
	}), nil
}

func receiptKeyToProto(k optoutd.ReceiptKey) *optoutv1.ReceiptKey {
	return &optoutv1.ReceiptKey{KeyId: k.ID, PublicKey: receipt.PublicKey(k.Seed), CreatedAt: timestamppb.New(k.CreatedAt), Current: k.Current}
}
