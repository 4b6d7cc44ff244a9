package api

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/judge"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func (s *enforcementServer) ReportProcessing(ctx context.Context, req *connect.Request[optoutv1.ReportProcessingRequest]) (*connect.Response[optoutv1.ReportProcessingResponse], error) {
	m := req.Msg
	if err := noUnknownFields(m); err != nil {
		return nil, rejectedWrite(err)
	}
	if err := optoutd.ValidateService(m.Service); err != nil {
		return nil, rejectedWrite(err)
	}
	if n := len(m.Reports); n == 0 || n > optoutd.MaxReportBatch {
		return nil, rejectedWrite(invalidf("reports: %d entries, must be 1..%d", n, optoutd.MaxReportBatch))
	}
	reports := make([]judge.Report, len(m.Reports))
	for i, r := range m.Reports {
		if err := noUnknownFields(r); err != nil {
			return nil, rejectedWrite(err)
		}
		k, err := key(fmt.Sprintf("reports[%d].", i), r.SubjectId, r.Purpose)
		if err != nil {
			return nil, rejectedWrite(err)
		}
		jr := judge.Report{Subject: k.SubjectID, Purpose: k.Purpose, Version: r.ProcessedVersion, Receipt: r.Receipt}
		if r.ProcessedAt != nil {
			if err := r.ProcessedAt.CheckValid(); err != nil {
				return nil, rejectedWrite(invalidf("reports[%d].processed_at: %v", i, err))
			}
			jr.At = r.ProcessedAt.AsTime()
		}
		reports[i] = jr
	}
	var batch optoutd.ReportBatch
	var verdicts []judge.Verdict
	idx, err := s.store.Read(ctx, func(v optoutd.View) (err error) {
		batch, verdicts, err = judge.Batch(v, m.Service, reports, v.AppliedIndex(), time.Now())
		return err
	})
	if err != nil {
		return nil, rejectedWrite(readError(err))
	}
	c := callOf(ctx)
	at, err := s.store.RecordReports(ctx, batch, c.schema, c.caller)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	out := &optoutv1.ReportProcessingResponse{Version: at, JudgedAt: idx, Violations: uint32(len(batch.Violations))}
	for i, vd := range verdicts {
		rv := &optoutv1.ReportVerdict{Kind: optoutv1.ViolationKind(vd.Kind), Evidence: vd.Evidence}
		if vd.Kind != optoutd.ViolationNone {
			rv.ViolationId = at<<16 | uint64(i)
		}
		out.Verdicts = append(out.Verdicts, rv)
	}
	return connect.NewResponse(out), nil
}

func (s *enforcementServer) ListViolations(ctx context.Context, req *connect.Request[optoutv1.ListViolationsRequest]) (*connect.Response[optoutv1.ListViolationsResponse], error) {
	m := req.Msg
	if err := noUnknownFields(m); err != nil {
		return nil, err
	}
	if m.Service != "" {
		if err := optoutd.ValidateService(m.Service); err != nil {
			return nil, readError(err)
		}
	}
	if m.Purpose != "" {
		if err := optoutd.ValidatePurpose(m.Purpose); err != nil {
			return nil, readError(err)
		}
	}
	if m.SubjectId != "" {
		if err := optoutd.ValidateSubjectID(m.SubjectId); err != nil {
			return nil, readError(err)
		}
	}
	limit, err := pageSize("limit", m.Limit)
	if err != nil {
		return nil, err
	}
	var list []optoutd.Violation
	idx, err := s.store.Read(ctx, func(v optoutd.View) (err error) {
		var hash []byte
		if m.SubjectId != "" {
			hash = v.ReceiptSubjectHash(m.SubjectId)
		}
		list, err = v.ListViolations(m.Service, m.Purpose, hash, m.BeforeId, limit)
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.ListViolationsResponse{ReadIndex: idx}
	for _, v := range list {
		out.Violations = append(out.Violations, violationToProto(v))
	}
	return connect.NewResponse(out), nil
}

func (s *enforcementServer) GetServiceScores(ctx context.Context, req *connect.Request[optoutv1.GetServiceScoresRequest]) (*connect.Response[optoutv1.GetServiceScoresResponse], error) {
	m := req.Msg
	if err := noUnknownFields(m); err != nil {
		return nil, err
	}
	window := optoutd.DefaultScoreWindow
	if m.Window != nil {
		if err := m.Window.CheckValid(); err != nil {
			return nil, invalidf("window: %v", err)
		}
		window = m.Window.AsDuration()
		if window < time.Hour || window > optoutd.MaxScoreWindow || window%time.Hour != 0 {
			return nil, invalidf("window: %v must be whole hours from 1h to %v", window, optoutd.MaxScoreWindow)
		}
	}
	if m.Service != "" {
		if err := optoutd.ValidateService(m.Service); err != nil {
			return nil, readError(err)
		}
	}
	var scores []optoutd.ServiceScore
	now := time.Now()
	idx, err := s.store.Read(ctx, func(v optoutd.View) (err error) {
		scores, err = v.ServiceScores(m.Service, now.Add(-window+time.Hour), now)
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.GetServiceScoresResponse{Window: durationpb.New(window), ReadIndex: idx}
	for _, sc := range scores {
		out.Scores = append(out.Scores, scoreToProto(sc))
	}
	return connect.NewResponse(out), nil
}

func scoreToProto(sc optoutd.ServiceScore) *optoutv1.ServiceScore {
	return &optoutv1.ServiceScore{Service: sc.Service, Reports: sc.Reports, Violations: sc.Violations,
		WithoutReceipt: sc.WithoutReceipt, ViolationsPer_10K: sc.Per10k()}
}

func violationToProto(v optoutd.Violation) *optoutv1.Violation {
	out := &optoutv1.Violation{
		Id: v.ID, Service: v.Service, SubjectHash: v.SubjectHash, Purpose: v.Purpose, Kind: optoutv1.ViolationKind(v.Kind),
		Evidence: v.Evidence, ProcessedVersion: v.ProcessedVersion, DecidingVersion: v.DecidingVersion,
		ReceiptReadIndex: v.ReceiptReadIndex, ReportedAt: timestamppb.New(v.ReportedAt), ReportVersion: v.ReportVersion,
	}
	if !v.ProcessedAt.IsZero() {
		out.ProcessedAt = timestamppb.New(v.ProcessedAt)
	}
	return out
}
