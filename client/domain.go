package client

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/wire"
	"google.golang.org/protobuf/types/known/durationpb"
)

// schemaHeader stamps optoutd.SchemaVersion (and the bearer token, if any)
// on every request.
type schemaHeader struct{ token string }

var schemaValue = strconv.FormatUint(uint64(optoutd.SchemaVersion), 10)

func (h schemaHeader) set(hd http.Header) {
	hd.Set(wire.HeaderSchemaVersion, schemaValue)
	if h.token != "" {
		hd.Set("Authorization", "Bearer "+h.token)
	}
}

func (h schemaHeader) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		h.set(req.Header())
		return next(ctx, req)
	}
}

func (h schemaHeader) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		h.set(conn.RequestHeader())
		return conn
	}
}

func (schemaHeader) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func unary[Req, Resp any](ctx context.Context, c *Client, retry func(error) bool, req *Req,
	call func(endpoint) func(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error)) (*Resp, error) {
	return do(ctx, c, retry, func(e endpoint) (*Resp, error) {
		r, err := call(e)(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	})
}

// EraseSubject erases a subject (a write: never repeated unless it
// certainly did not apply).
func (c *Client) EraseSubject(ctx context.Context, req *optoutv1.EraseSubjectRequest) (*optoutv1.EraseSubjectResponse, error) {
	return unary(ctx, c, retryWrite, req, func(e endpoint) func(context.Context, *connect.Request[optoutv1.EraseSubjectRequest]) (*connect.Response[optoutv1.EraseSubjectResponse], error) {
		return e.optout.EraseSubject
	})
}

// DefinePurpose creates or redefines a purpose.
func (c *Client) DefinePurpose(ctx context.Context, req *optoutv1.DefinePurposeRequest) (*optoutv1.DefinePurposeResponse, error) {
	return unary(ctx, c, retryWrite, req, func(e endpoint) func(context.Context, *connect.Request[optoutv1.DefinePurposeRequest]) (*connect.Response[optoutv1.DefinePurposeResponse], error) {
		return e.catalog.DefinePurpose
	})
}

// ListPurposes lists the catalog.
func (c *Client) ListPurposes(ctx context.Context) (*optoutv1.ListPurposesResponse, error) {
	return unary(ctx, c, retryRead, &optoutv1.ListPurposesRequest{}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.ListPurposesRequest]) (*connect.Response[optoutv1.ListPurposesResponse], error) {
		return e.catalog.ListPurposes
	})
}

// GetPurpose reads one purpose.
func (c *Client) GetPurpose(ctx context.Context, name string) (*optoutv1.GetPurposeResponse, error) {
	return unary(ctx, c, retryRead, &optoutv1.GetPurposeRequest{Name: name}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.GetPurposeRequest]) (*connect.Response[optoutv1.GetPurposeResponse], error) {
		return e.catalog.GetPurpose
	})
}

// History reads one page of a subject's history.
func (c *Client) History(ctx context.Context, req *optoutv1.HistoryRequest) (*optoutv1.HistoryResponse, error) {
	return unary(ctx, c, retryRead, req, func(e endpoint) func(context.Context, *connect.Request[optoutv1.HistoryRequest]) (*connect.Response[optoutv1.HistoryResponse], error) {
		return e.audit.History
	})
}

// StateAt asks what was decided as of a version.
func (c *Client) StateAt(ctx context.Context, req *optoutv1.StateAtRequest) (*optoutv1.StateAtResponse, error) {
	return unary(ctx, c, retryRead, req, func(e endpoint) func(context.Context, *connect.Request[optoutv1.StateAtRequest]) (*connect.Response[optoutv1.StateAtResponse], error) {
		return e.audit.StateAt
	})
}

// VerifyAudit asks a node to walk the hash chain.
func (c *Client) VerifyAudit(ctx context.Context) (*optoutv1.VerifyAuditResponse, error) {
	return unary(ctx, c, retryRead, &optoutv1.VerifyAuditRequest{}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.VerifyAuditRequest]) (*connect.Response[optoutv1.VerifyAuditResponse], error) {
		return e.audit.VerifyAudit
	})
}

// GetSettings reads the replicated settings.
func (c *Client) GetSettings(ctx context.Context) (*optoutv1.Settings, error) {
	r, err := unary(ctx, c, retryRead, &optoutv1.GetSettingsRequest{}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.GetSettingsRequest]) (*connect.Response[optoutv1.GetSettingsResponse], error) {
		return e.admin.GetSettings
	})
	return r.GetSettings(), err
}

// SetMinSchemaVersion sets the cluster's minimum client schema version.
func (c *Client) SetMinSchemaVersion(ctx context.Context, v uint32) (*optoutv1.Settings, error) {
	r, err := unary(ctx, c, retryWrite, &optoutv1.SetMinSchemaVersionRequest{MinSchemaVersion: v}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.SetMinSchemaVersionRequest]) (*connect.Response[optoutv1.SetMinSchemaVersionResponse], error) {
		return e.admin.SetMinSchemaVersion
	})
	return r.GetSettings(), err
}

// SetAuditRetention sets how long history is kept (0: forever).
func (c *Client) SetAuditRetention(ctx context.Context, d time.Duration) (*optoutv1.Settings, error) {
	r, err := unary(ctx, c, retryWrite, &optoutv1.SetAuditRetentionRequest{Retention: durationpb.New(d)}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.SetAuditRetentionRequest]) (*connect.Response[optoutv1.SetAuditRetentionResponse], error) {
		return e.admin.SetAuditRetention
	})
	return r.GetSettings(), err
}

// AddMember asks the cluster to add a node as a learner. joining says the
// node has no data (see AddMemberRequest.joining).
func (c *Client) AddMember(ctx context.Context, id, raftAddr string, joining bool) (*optoutv1.AddMemberResponse, error) {
	return unary(ctx, c, retryWrite, &optoutv1.AddMemberRequest{Id: id, RaftAddress: raftAddr, Joining: joining}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.AddMemberRequest]) (*connect.Response[optoutv1.AddMemberResponse], error) {
		return e.cluster.AddMember
	})
}

// PromoteMember makes a learner a voter.
func (c *Client) PromoteMember(ctx context.Context, id string) (*optoutv1.PromoteMemberResponse, error) {
	return unary(ctx, c, retryWrite, &optoutv1.PromoteMemberRequest{Id: id}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.PromoteMemberRequest]) (*connect.Response[optoutv1.PromoteMemberResponse], error) {
		return e.cluster.PromoteMember
	})
}

// RemoveMember removes a node from the cluster.
func (c *Client) RemoveMember(ctx context.Context, id string) (*optoutv1.RemoveMemberResponse, error) {
	return unary(ctx, c, retryWrite, &optoutv1.RemoveMemberRequest{Id: id}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.RemoveMemberRequest]) (*connect.Response[optoutv1.RemoveMemberResponse], error) {
		return e.cluster.RemoveMember
	})
}

// TransferLeadership moves leadership (to id, or any caught-up voter).
func (c *Client) TransferLeadership(ctx context.Context, id string) (*optoutv1.TransferLeadershipResponse, error) {
	return unary(ctx, c, retryWrite, &optoutv1.TransferLeadershipRequest{ToId: id}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.TransferLeadershipRequest]) (*connect.Response[optoutv1.TransferLeadershipResponse], error) {
		return e.cluster.TransferLeadership
	})
}
