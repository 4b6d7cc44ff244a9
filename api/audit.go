package api

import (
	"context"
	"strconv"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

type auditServer struct {
	optoutv1connect.UnimplementedAuditServiceHandler
	store Store
}

func uitoa(v uint64) string { return strconv.FormatUint(v, 10) }

// pageSize is a page size field: 0 means DefaultHistoryPage, and more than
// MaxHistoryPage is refused naming the field.
func pageSize(field string, n uint32) (int, error) {
	switch {
	case n == 0:
		return optoutd.DefaultHistoryPage, nil
	case n > optoutd.MaxHistoryPage:
		return 0, invalidf("%s: %d is over the limit of %d", field, n, optoutd.MaxHistoryPage)
	}
	return int(n), nil
}

func (s *auditServer) History(ctx context.Context, req *connect.Request[optoutv1.HistoryRequest]) (*connect.Response[optoutv1.HistoryResponse], error) {
	m := req.Msg
	if err := noUnknownFields(m); err != nil {
		return nil, err
	}
	if err := optoutd.ValidateSubjectID(m.SubjectId); err != nil {
		return nil, invalidf("%s", optoutd.ErrorMessage(err))
	}
	if m.Purpose != "" {
		if err := optoutd.ValidatePurpose(m.Purpose); err != nil {
			return nil, invalidf("%s", optoutd.ErrorMessage(err))
		}
	}
	size, err := pageSize("page_size", m.PageSize)
	if err != nil {
		return nil, err
	}
	var before uint64
	if m.PageToken != "" {
		v, err := strconv.ParseUint(m.PageToken, 10, 64)
		if err != nil || v == 0 {
			return nil, invalidf("page_token: %q is not a token from a previous response", truncateHeader(m.PageToken))
		}
		before = v
	}
	var entries []optoutd.AuditEntry
	idx, cat, err := read(ctx, s.store, func(v optoutd.View) (err error) {
		entries, err = v.History(m.SubjectId, m.Purpose, before, size)
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.HistoryResponse{ReadIndex: idx}
	for _, e := range entries {
		out.Entries = append(out.Entries, auditToProto(e))
	}
	if len(entries) >= size { // a page never ends inside a version, so it may hold more
		out.NextPageToken = uitoa(entries[len(entries)-1].Version)
	}
	return withCatalog(out, cat), nil
}

func (s *auditServer) StateAt(ctx context.Context, req *connect.Request[optoutv1.StateAtRequest]) (*connect.Response[optoutv1.StateAtResponse], error) {
	m := req.Msg
	if err := noUnknownFields(m); err != nil {
		return nil, err
	}
	k, err := key("", m.SubjectId, m.Purpose)
	if err != nil {
		return nil, err
	}
	if m.Version == 0 {
		return nil, invalidf("version: must be at least 1")
	}
	var res optoutd.StateAtResult
	idx, cat, err := read(ctx, s.store, func(v optoutd.View) (err error) {
		if m.Version > v.AppliedIndex() {
			return optoutd.Errorf(optoutd.Invalid, "version: %d is in the future (applied index %d)", m.Version, v.AppliedIndex())
		}
		res, err = v.StateAt(k, m.Version)
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	c := res.Check
	return withCatalog(&optoutv1.StateAtResponse{
		AsOf: res.AsOf, Decision: optoutv1.Decision(c.Decision), State: optoutv1.State(c.State), Version: c.Version,
		Basis: optoutv1.Basis(c.Basis), DecidedByPurpose: c.DecidedBy, ReadIndex: idx,
	}, cat), nil
}

func (s *auditServer) VerifyAudit(ctx context.Context, req *connect.Request[optoutv1.VerifyAuditRequest]) (*connect.Response[optoutv1.VerifyAuditResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	var rep optoutd.AuditReport
	idx, cat, err := read(ctx, s.store, func(v optoutd.View) (err error) {
		rep, err = v.VerifyAudit()
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	return withCatalog(&optoutv1.VerifyAuditResponse{
		Ok: rep.OK(), Entries: rep.Entries, FirstVersion: rep.FirstVersion, LastVersion: rep.LastVersion,
		BrokenAt: rep.BrokenAt, Problem: rep.Problem, ReadIndex: idx,
	}, cat), nil
}
