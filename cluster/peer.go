package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	peerv1 "github.com/optoutd/optoutd/cluster/gen/optout/peer/v1"
	"github.com/optoutd/optoutd/cluster/gen/optout/peer/v1/peerv1connect"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"github.com/optoutd/optoutd/security"
	"google.golang.org/protobuf/proto"
)

// headerOutcome carries the leader's verdict on a failed forwarded write. A
// failure without it never reached the leader's handler, or broke after it.
const (
	headerNodeID      = "Optout-Node-Id"
	headerRemoved     = "Optout-Removed"
	headerDomainCode  = "Optout-Domain-Code"
	headerOutcome     = "Optout-Outcome"
	outcomeNotApplied = "not-applied"
	outcomeUnknown    = "unknown"
)

// peerServer serves PeerService on the Raft address.
type peerServer struct {
	peerv1connect.UnimplementedPeerServiceHandler
	n *Node
}

// checkCaller answers a peer request only for a caller that names itself
// (Optout-Node-Id) as a member of this leader's latest configuration. A
// node the committed configuration no longer lists is told so; while the
// change that dropped it is still in flight it is told to retry.
func (s *peerServer) checkCaller(h http.Header) *connect.Error {
	id := h.Get(headerNodeID)
	if id == "" {
		return outcomeErr(connect.CodePermissionDenied, outcomeNotApplied,
			fmt.Errorf("peer requests must name the calling member in the %s header", headerNodeID))
	}
	if !idRE.MatchString(id) {
		return outcomeErr(connect.CodeInvalidArgument, outcomeNotApplied,
			fmt.Errorf("%s: %q is not a node id (%s)", headerNodeID, shorten(id), idRE))
	}
	member, sure := s.n.memberStatus(id)
	switch {
	case member:
		return nil
	case sure:
		ce := outcomeErr(connect.CodeFailedPrecondition, outcomeNotApplied, fmt.Errorf("%s is not a member of the cluster", id))
		ce.Meta().Set(headerRemoved, "true")
		return ce
	default:
		return outcomeErr(connect.CodeUnavailable, outcomeNotApplied, errors.New("membership change in flight"))
	}
}

func (s *peerServer) Propose(ctx context.Context, req *connect.Request[peerv1.ProposeRequest]) (*connect.Response[peerv1.ProposeResponse], error) {
	if s.n.raft.State() != raft.Leader {
		return nil, outcomeErr(connect.CodeUnavailable, outcomeNotApplied, raft.ErrNotLeader)
	}
	if ce := s.checkCaller(req.Header()); ce != nil {
		return nil, ce
	}
	if err := checkForwarded(req.Msg.Command, req.Header().Get(headerNodeID)); err != nil {
		return nil, domainErr(err)
	}
	if term := s.n.raft.CurrentTerm(); s.n.readyTerm.Load() != term {
		return nil, outcomeErr(connect.CodeUnavailable, outcomeNotApplied, errNotReady)
	}
	res, err := s.n.applyLocal(ctx, req.Msg.Command)
	var na *notAppliedError
	switch {
	case err == nil:
	case errors.As(err, &na):
		return nil, outcomeErr(connect.CodeUnavailable, outcomeNotApplied, err)
	default:
		return nil, outcomeErr(connect.CodeUnknown, outcomeUnknown, err)
	}
	b, err := proto.Marshal(res)
	if err != nil {
		return nil, outcomeErr(connect.CodeUnknown, outcomeUnknown, err)
	}
	return connect.NewResponse(&peerv1.ProposeResponse{Result: b}), nil
}

// domainErr carries a rule's refusal (nothing was applied) back to the
// forwarding node, which turns it into the same domain error.
func domainErr(err error) *connect.Error {
	var de *optoutd.Error
	if !errors.As(err, &de) {
		de = optoutd.WrapError(optoutd.Internal, err, "%v", err)
	}
	code := connect.CodeFailedPrecondition
	if de.Code == optoutd.Invalid {
		code = connect.CodeInvalidArgument
	}
	ce := outcomeErr(code, outcomeNotApplied, errors.New(de.Message))
	ce.Meta().Set(headerDomainCode, string(de.Code))
	return ce
}

func (s *peerServer) ReadIndex(ctx context.Context, req *connect.Request[peerv1.ReadIndexRequest]) (*connect.Response[peerv1.ReadIndexResponse], error) {
	if s.n.raft.State() != raft.Leader {
		return nil, connect.NewError(connect.CodeUnavailable, raft.ErrNotLeader)
	}
	if ce := s.checkCaller(req.Header()); ce != nil {
		return nil, ce
	}
	w := make(chan readResult, 1)
	select {
	case s.n.readQ <- w:
	case <-ctx.Done():
		return nil, connect.NewError(connect.CodeDeadlineExceeded, ctx.Err())
	}
	select {
	case res := <-w:
		if res.err != nil {
			return nil, connect.NewError(connect.CodeUnavailable, res.err)
		}
		return connect.NewResponse(&peerv1.ReadIndexResponse{ReadIndex: res.index, Term: s.n.raft.CurrentTerm()}), nil
	case <-ctx.Done():
		return nil, connect.NewError(connect.CodeDeadlineExceeded, ctx.Err())
	}
}

func (s *peerServer) Info(context.Context, *connect.Request[peerv1.InfoRequest]) (*connect.Response[peerv1.InfoResponse], error) {
	if s.n.removed.Load() {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errRemoved)
	}
	return connect.NewResponse(&peerv1.InfoResponse{
		NodeId:       s.n.cfg.ID,
		AppliedIndex: s.n.fsm.AppliedIndex(),
		LastLogIndex: s.n.raft.LastIndex(),
		Term:         s.n.raft.CurrentTerm(),
	}), nil
}

func (s *peerServer) ChangeMembership(ctx context.Context, req *connect.Request[peerv1.ChangeMembershipRequest]) (*connect.Response[peerv1.ChangeMembershipResponse], error) {
	if s.n.raft.State() != raft.Leader {
		return nil, outcomeErr(connect.CodeUnavailable, outcomeNotApplied, raft.ErrNotLeader)
	}
	if ce := s.checkCaller(req.Header()); ce != nil {
		return nil, ce
	}
	idx, err := s.n.changeLocal(ctx, memberChange{op: req.Msg.Op, id: req.Msg.Id, addr: req.Msg.Address, joining: req.Msg.Joining})
	var (
		na *notAppliedError
		de *optoutd.Error
	)
	switch {
	case err == nil:
		lid, _ := s.n.Leader()
		return connect.NewResponse(&peerv1.ChangeMembershipResponse{Index: idx, LeaderId: lid}), nil
	case errors.As(err, &na):
		return nil, outcomeErr(connect.CodeUnavailable, outcomeNotApplied, err)
	case errors.As(err, &de):
		// A rule refused the change; carry the domain code back.
		return nil, domainErr(de)
	default:
		return nil, outcomeErr(connect.CodeUnknown, outcomeUnknown, err)
	}
}

func (s *peerServer) Removed(_ context.Context, req *connect.Request[peerv1.RemovedRequest]) (*connect.Response[peerv1.RemovedResponse], error) {
	s.n.acceptRemoval(req.Header().Get(headerNodeID), req.Msg.Index)
	return connect.NewResponse(&peerv1.RemovedResponse{}), nil
}

func outcomeErr(code connect.Code, outcome string, err error) *connect.Error {
	ce := connect.NewError(code, err)
	ce.Meta().Set(headerOutcome, outcome)
	return ce
}

// peerClients holds one HTTP/2 connection pool to all peers.
type peerClients struct {
	self string
	// onRemoved is called when the leader says this node is not a member.
	onRemoved func()
	hc        *http.Client
	tr        *http.Transport
	mu        sync.Mutex
	clients   map[string]peerv1connect.PeerServiceClient
}

func newPeerClients(nw Network, tlsr *security.Reloader, self string, onRemoved func()) *peerClients {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialMux(ctx, nw, tlsr, addr, muxPeer)
		},
		Protocols:       &protos,
		IdleConnTimeout: time.Minute,
	}
	return &peerClients{self: self, onRemoved: onRemoved, hc: &http.Client{Transport: tr}, tr: tr, clients: map[string]peerv1connect.PeerServiceClient{}}
}

func (p *peerClients) client(addr string) peerv1connect.PeerServiceClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[addr]
	if !ok {
		c = peerv1connect.NewPeerServiceClient(p.hc, "http://"+addr, connect.WithInterceptors(callerHeader(p.self)))
		p.clients[addr] = c
	}
	return c
}

func (p *peerClients) close() { p.tr.CloseIdleConnections() }

// propose forwards an encoded command to the leader at addr and classifies
// any failure by what the caller can know about the write's fate.
func (p *peerClients) propose(ctx context.Context, addr string, data []byte) (*fsmv1.Result, error) {
	resp, err := p.client(addr).Propose(ctx, connect.NewRequest(&peerv1.ProposeRequest{Command: data}))
	if err != nil {
		p.checkRemoved(err)
		var ce *connect.Error
		if errors.As(err, &ce) {
			if code := ce.Meta().Get(headerDomainCode); code != "" {
				return nil, optoutd.Errorf(optoutd.Code(code), "%s", ce.Message())
			}
			switch ce.Meta().Get(headerOutcome) {
			case outcomeNotApplied:
				return nil, &notAppliedError{fmt.Errorf("leader %s: %s", addr, ce.Message())}
			case outcomeUnknown:
				return nil, &unknownOutcomeError{fmt.Errorf("leader %s: %s", addr, ce.Message())}
			}
		}
		var de *dialError
		if errors.As(err, &de) {
			return nil, &notAppliedError{err}
		}
		return nil, &unknownOutcomeError{fmt.Errorf("forward to leader %s: %w", addr, err)}
	}
	var res fsmv1.Result
	if err := proto.Unmarshal(resp.Msg.Result, &res); err != nil {
		return nil, &unknownOutcomeError{fmt.Errorf("forward to leader %s: bad result: %w", addr, err)}
	}
	return &res, nil
}

func (p *peerClients) readIndex(ctx context.Context, addr string) (uint64, error) {
	resp, err := p.client(addr).ReadIndex(ctx, connect.NewRequest(&peerv1.ReadIndexRequest{}))
	if err != nil {
		p.checkRemoved(err)
		return 0, fmt.Errorf("cluster: read index from leader %s: %w", addr, err)
	}
	return resp.Msg.ReadIndex, nil
}

func (p *peerClients) info(ctx context.Context, addr string) (*peerv1.InfoResponse, error) {
	resp, err := p.client(addr).Info(ctx, connect.NewRequest(&peerv1.InfoRequest{}))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func (p *peerClients) removed(ctx context.Context, addr string, index uint64) error {
	_, err := p.client(addr).Removed(ctx, connect.NewRequest(&peerv1.RemovedRequest{Index: index}))
	return err
}

// changeMembership forwards a membership change to the leader at addr.
func (p *peerClients) changeMembership(ctx context.Context, addr string, mc memberChange) (uint64, error) {
	resp, err := p.client(addr).ChangeMembership(ctx, connect.NewRequest(&peerv1.ChangeMembershipRequest{Op: mc.op, Id: mc.id, Address: mc.addr, Joining: mc.joining}))
	if err == nil {
		return resp.Msg.Index, nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		if code := ce.Meta().Get(headerDomainCode); code != "" {
			return 0, optoutd.Errorf(optoutd.Code(code), "%s", ce.Message())
		}
		switch ce.Meta().Get(headerOutcome) {
		case outcomeNotApplied:
			return 0, &notAppliedError{fmt.Errorf("leader %s: %s", addr, ce.Message())}
		case outcomeUnknown:
			return 0, &unknownOutcomeError{fmt.Errorf("leader %s: %s", addr, ce.Message())}
		}
	}
	var de *dialError
	if errors.As(err, &de) {
		return 0, &notAppliedError{err}
	}
	return 0, &unknownOutcomeError{fmt.Errorf("forward to leader %s: %w", addr, err)}
}

// checkRemoved reacts to a leader saying this node is not a member.
func (p *peerClients) checkRemoved(err error) {
	var ce *connect.Error
	if errors.As(err, &ce) && ce.Meta().Get(headerRemoved) == "true" && p.onRemoved != nil {
		p.onRemoved()
	}
}

// callerHeader names the calling node on every peer request.
func callerHeader(id string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set(headerNodeID, id)
			return next(ctx, req)
		}
	}
}
