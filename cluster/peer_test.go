package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster/clustertest"
	peerv1 "github.com/optoutd/optoutd/cluster/gen/optout/peer/v1"
	"github.com/optoutd/optoutd/cluster/gen/optout/peer/v1/peerv1connect"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// rawPeer is a PeerService client that dials a node's Raft port the way an
// outsider (or a buggy peer) would: the protocol byte, then plain HTTP/2,
// with whatever headers the test sets and no credentials.
func rawPeer(addr string, header map[string]string) peerv1connect.PeerServiceClient {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{
		Protocols: &protos,
		DialContext: func(ctx context.Context, _, a string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", a)
			if err != nil {
				return nil, err
			}
			if _, err := c.Write([]byte{'P'}); err != nil {
				_ = c.Close()
				return nil, err
			}
			return c, nil
		},
	}
	hdr := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			for k, v := range header {
				req.Header().Set(k, v)
			}
			return next(ctx, req)
		}
	})
	return peerv1connect.NewPeerServiceClient(&http.Client{Transport: tr}, "http://"+addr, connect.WithInterceptors(hdr))
}

func encode(t *testing.T, typ fsmv1.CommandType, m proto.Message) []byte {
	t.Helper()
	if got, _ := command.TypeOf(m); got != typ {
		t.Fatalf("%T is a %v payload, not %v", m, got, typ)
	}
	b, err := command.Encode(m, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// badCommands decode, but no state machine can apply them as they stand:
// each one, once in the log, used to halt every replica.
func badCommands(t *testing.T) map[string][]byte {
	huge := strings.Repeat("x", 40<<10) // over bbolt's 32 KiB key limit
	set := func(c *fsmv1.SetCommand) []byte { return encode(t, fsmv1.CommandType_COMMAND_TYPE_SET, c) }
	return map[string][]byte{
		"set with an idempotency key and no window": set(&fsmv1.SetCommand{SubjectId: "u1", Purpose: "email_marketing",
			State: fsmv1.State_STATE_OPTED_OUT, IdempotencyKey: "k1"}),
		"set with a negative window": set(&fsmv1.SetCommand{SubjectId: "u1", Purpose: "email_marketing",
			State: fsmv1.State_STATE_OPTED_OUT, IdempotencyKey: "k2", IdempotencyTtlNanos: -1}),
		"set with a 40 KiB subject": set(&fsmv1.SetCommand{SubjectId: huge, Purpose: "email_marketing", State: fsmv1.State_STATE_OPTED_OUT}),
		"set with a 40 KiB idempotency key": set(&fsmv1.SetCommand{SubjectId: "u1", Purpose: "email_marketing",
			State: fsmv1.State_STATE_OPTED_OUT, IdempotencyKey: huge, IdempotencyTtlNanos: int64(time.Hour)}),
		"register a 40 KiB node id": encode(t, fsmv1.CommandType_COMMAND_TYPE_REGISTER_NODE,
			&fsmv1.RegisterNodeCommand{NodeId: huge, ApiAddress: "127.0.0.1:1"}),
		"define a purpose with a 40 KiB name": encode(t, fsmv1.CommandType_COMMAND_TYPE_DEFINE_PURPOSE,
			&fsmv1.DefinePurposeCommand{Purpose: &fsmv1.PurposeDef{Name: huge, DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_DENY}}),
		"put a principal with a 40 KiB name": encode(t, fsmv1.CommandType_COMMAND_TYPE_PUT_PRINCIPAL,
			&fsmv1.PutPrincipalCommand{Name: huge, Kind: fsmv1.PrincipalKind_PRINCIPAL_KIND_CERTIFICATE, Role: fsmv1.Role_ROLE_READER}),
		"init with a bad starter catalog": encode(t, fsmv1.CommandType_COMMAND_TYPE_INIT_CLUSTER,
			&fsmv1.InitClusterCommand{ErasureKey: make([]byte, 32), Purposes: []*fsmv1.PurposeDef{{Name: "Bad Name"}}}),
		"a term start from outside": encode(t, fsmv1.CommandType_COMMAND_TYPE_TERM_START, &fsmv1.TermStartCommand{LeaderId: "n9"}),
	}
}

// TestForwardedCommandsThatCannotApplyNeverHalt: a PeerService.Propose
// that decodes but cannot be applied (sent by an outsider with no
// credentials, as a peer, or as a peer with a bad node id) is refused or
// answered as a rule failure; no replica halts, and the cluster goes on
// serving. Before the fix one such Propose halted all three nodes.
func TestForwardedCommandsThatCannotApplyNeverHalt(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)
	follower := c.Followers(leader)[0]
	if _, err := set(ctx, follower, "ready", optoutd.StateOptedOut, nil); err != nil {
		t.Fatal(err)
	}
	callers := map[string]map[string]string{
		"no node id":     nil,
		"a member's id":  {"Optout-Node-Id": follower.ID()},
		"an unknown id":  {"Optout-Node-Id": "n9"},
		"a 2 KiB id":     {"Optout-Node-Id": strings.Repeat("n", 2048)},
		"an empty value": {"Optout-Node-Id": ""},
	}
	for who, hdr := range callers {
		p := rawPeer(c.RaftAddr(leader.ID()), hdr)
		for name, cmd := range badCommands(t) {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err := p.Propose(rctx, connect.NewRequest(&peerv1.ProposeRequest{Command: cmd}))
			cancel()
			if err == nil {
				var res fsmv1.Result
				if uerr := proto.Unmarshal(resp.Msg.Result, &res); uerr != nil || res.ErrorCode == fsmv1.ErrorCode_ERROR_CODE_UNSPECIFIED {
					t.Errorf("%s, %s: accepted as a success: %+v %v", who, name, &res, uerr)
				}
			}
			for _, n := range c.Nodes() {
				if h := n.FSM().Halted(); h != nil {
					t.Fatalf("%s, %s: %s halted: %v", who, name, n.ID(), h)
				}
			}
		}
	}
	// The cluster still works, on every node, and every replica agrees.
	rec, err := set(ctx, follower, "after", optoutd.StateOptedOut, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes() {
		got, ok, _, err := get(ctx, n, "after")
		if err != nil || !ok || got.Version != rec.Version {
			t.Fatalf("%s after the bad proposals: %+v %v %v", n.ID(), got, ok, err)
		}
	}
	waitSameDigest(t, c)
}

// TestPeerCallsNeedAMemberID: the peer RPC answers only callers that name
// themselves as members; before the fix a request without the header
// skipped the membership check.
func TestPeerCallsNeedAMemberID(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 30*time.Second)
	// Once a write has gone through, the leader serves peers.
	if _, err := set(ctx, leader, "ready", optoutd.StateOptedOut, nil); err != nil {
		t.Fatal(err)
	}
	ok := encode(t, fsmv1.CommandType_COMMAND_TYPE_SET, &fsmv1.SetCommand{SubjectId: "u1", Purpose: "email_marketing", State: fsmv1.State_STATE_OPTED_OUT})
	for who, hdr := range map[string]map[string]string{
		"no node id":    nil,
		"an unknown id": {"Optout-Node-Id": "n9"},
	} {
		p := rawPeer(c.RaftAddr(leader.ID()), hdr)
		if _, err := p.Propose(ctx, connect.NewRequest(&peerv1.ProposeRequest{Command: ok})); err == nil {
			t.Errorf("%s: Propose applied a write", who)
		}
		if _, err := p.ReadIndex(ctx, connect.NewRequest(&peerv1.ReadIndexRequest{})); err == nil {
			t.Errorf("%s: ReadIndex answered", who)
		}
	}
	// A member is served.
	p := rawPeer(c.RaftAddr(leader.ID()), map[string]string{"Optout-Node-Id": c.Followers(leader)[0].ID()})
	if _, err := p.ReadIndex(ctx, connect.NewRequest(&peerv1.ReadIndexRequest{})); err != nil {
		t.Fatalf("a member's ReadIndex: %v", err)
	}
	// Nothing was written by the refused calls.
	if _, found, _, err := get(ctx, leader, "u1"); err != nil || found {
		t.Fatalf("u1 after refused proposals: found=%v %v", found, err)
	}
}

// waitSameDigest polls until every live node has applied the same index
// and holds the same state.
func waitSameDigest(t *testing.T, c *clustertest.Cluster) {
	t.Helper()
	clustertest.Eventually(t, 20*time.Second, func() error {
		var first optoutd.StateDigest
		for i, n := range c.Nodes() {
			d, err := n.StateDigest(context.Background())
			if err != nil {
				return err
			}
			if i == 0 {
				first = d
				continue
			}
			if d.AppliedIndex != first.AppliedIndex || d.SHA256 != first.SHA256 {
				return fmt.Errorf("%s at %d differs from %s at %d", d.NodeID, d.AppliedIndex, first.NodeID, first.AppliedIndex)
			}
		}
		return nil
	})
}

var errNotYet = errors.New("not yet")
