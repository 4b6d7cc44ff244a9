package client

import (
	"context"
	"errors"
	"net/url"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd/api/wire"
)

// Writes go to the leader when the client knows which endpoint it is.
//
// Every node answers with the leader's registered API address
// (wire.HeaderLeader). When that address is one of the client's endpoints
// (the same host:port), writes start there instead of at the endpoint
// reads use, which saves the follower's forwarding hop: about a quarter of
// the nodes' CPU per write when clients are spread over three nodes
// (docs/benchmarks.md). A stale or unknown hint costs nothing but that
// hop: every node accepts every write, and the next answer corrects the
// hint. Behind a proxy or with advertised addresses the client does not
// dial, nothing matches and writes go where reads go.

// leaderWatch reads the hint from every unary answer and error.
type leaderWatch struct{ c *Client }

func (w leaderWatch) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		resp, err := next(ctx, req)
		var hint string
		if resp != nil {
			hint = resp.Header().Get(wire.HeaderLeader)
		} else if ce := new(connect.Error); errors.As(err, &ce) {
			hint = ce.Meta().Get(wire.HeaderLeader)
		}
		if hint != "" {
			w.c.noteLeader(hint)
		}
		return resp, err
	}
}

func (leaderWatch) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (leaderWatch) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// noteLeader records which endpoint, if any, the hint names.
func (c *Client) noteLeader(hint string) {
	if p := c.leaderHint.Load(); p != nil && *p == hint {
		return
	}
	idx := int64(-1)
	for i, e := range c.eps {
		if e.host == hint {
			idx = int64(i)
			break
		}
	}
	c.leader.Store(idx)
	c.leaderHint.Store(&hint)
}

// LeaderEndpoint is the endpoint URL that the last answer named as the
// leader's, or "" when none of the endpoints matches.
func (c *Client) LeaderEndpoint() string {
	if i := c.leader.Load(); i >= 0 && int(i) < len(c.eps) {
		return c.eps[i].url
	}
	return ""
}

// writeStart is where a write's first attempt goes: the leader's endpoint
// when known; else -1, which makes doFrom start where reads go (and a
// success move that, as for a read).
func (c *Client) writeStart() int {
	if i := c.leader.Load(); i >= 0 && int(i) < len(c.eps) {
		return int(i)
	}
	return -1
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}
