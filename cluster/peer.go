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
	peerv1 "github.com/optoutd/optoutd/cluster/gen/optout/peer/v1"
	"github.com/optoutd/optoutd/cluster/gen/optout/peer/v1/peerv1connect"
	fsmv1 "github.com/optoutd/optoutd/fsm/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// headerOutcome carries the leader's verdict on a failed forwarded write. A
// failure without it never reached the leader's handler, or broke after it.
const (
	headerOutcome     = "Optout-Outcome"
	outcomeNotApplied = "not-applied"
	outcomeUnknown    = "unknown"
)

// peerServer serves PeerService on the Raft address.
type peerServer struct {
	peerv1connect.UnimplementedPeerServiceHandler
	n *Node
}

func (s *peerServer) Propose(ctx context.Context, req *connect.Request[peerv1.ProposeRequest]) (*connect.Response[peerv1.ProposeResponse], error) {
	if s.n.raft.State() != raft.Leader {
		return nil, outcomeErr(connect.CodeUnavailable, outcomeNotApplied, raft.ErrNotLeader)
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

func (s *peerServer) ReadIndex(ctx context.Context, _ *connect.Request[peerv1.ReadIndexRequest]) (*connect.Response[peerv1.ReadIndexResponse], error) {
	if s.n.raft.State() != raft.Leader {
		return nil, connect.NewError(connect.CodeUnavailable, raft.ErrNotLeader)
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

func outcomeErr(code connect.Code, outcome string, err error) *connect.Error {
	ce := connect.NewError(code, err)
	ce.Meta().Set(headerOutcome, outcome)
	return ce
}

// peerClients holds one HTTP/2 connection pool to all peers.
type peerClients struct {
	hc      *http.Client
	tr      *http.Transport
	mu      sync.Mutex
	clients map[string]peerv1connect.PeerServiceClient
}

func newPeerClients(nw Network) *peerClients {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialMux(ctx, nw, addr, muxPeer)
		},
		Protocols:       &protos,
		IdleConnTimeout: time.Minute,
	}
	return &peerClients{hc: &http.Client{Transport: tr}, tr: tr, clients: map[string]peerv1connect.PeerServiceClient{}}
}

func (p *peerClients) client(addr string) peerv1connect.PeerServiceClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[addr]
	if !ok {
		c = peerv1connect.NewPeerServiceClient(p.hc, "http://"+addr)
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
		var ce *connect.Error
		if errors.As(err, &ce) {
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
		return 0, fmt.Errorf("cluster: read index from leader %s: %w", addr, err)
	}
	return resp.Msg.ReadIndex, nil
}
