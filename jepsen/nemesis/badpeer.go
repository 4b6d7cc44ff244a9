package nemesis

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	peerv1 "github.com/optoutd/optoutd/cluster/gen/optout/peer/v1"
	"github.com/optoutd/optoutd/cluster/gen/optout/peer/v1/peerv1connect"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// The bad-peer-requests fault sends a node's Raft port, for as long as it
// is held, what no correct peer sends: log commands that decode but that
// no state machine can apply or that break the API's rules, undecodable
// and oversized bodies, requests that name no member or a stranger, a
// forged removal notice, and bytes that are no protocol at all. It speaks
// the wire protocol only (the protocol byte, then HTTP/2 Connect, or raw
// bytes); it imports the product's generated wire types, nothing else.
//
// Expected: every such request is refused, or answered as a rule failure
// that changed nothing; no node halts, and the workload's checkers pass.
// A request the cluster applied as a success is a finding, which fails the
// run (report: "nemesis-finding"); a halted node shows as not converged.

// peerWireFormat is the command format the forged commands claim. Every
// release reads it; a newer release bumps the number, never reinterprets.
const peerWireFormat = 3

const raftProtocolPeer, raftProtocolRaft = 'P', 'R'

// peerAttack runs the requests against one address until stopped.
type peerAttack struct {
	addr    string
	members []string
	client  peerv1connect.PeerServiceClient
	hc      *http.Client

	mu       sync.Mutex
	sent     int // RPCs
	refused  int // RPCs answered with an error
	failures int // proposals answered as a rule failure (nothing applied)
	junk     int // connections that sent no protocol
	findings []string
	rounds   int
}

func newPeerAttack(addr string, members []string) *peerAttack {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{
		Protocols: &protos,
		DialContext: func(ctx context.Context, _, a string) (net.Conn, error) {
			return dialProtocol(ctx, a, raftProtocolPeer)
		},
	}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	return &peerAttack{addr: addr, members: members, hc: hc,
		client: peerv1connect.NewPeerServiceClient(hc, "http://"+addr)}
}

func dialProtocol(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func command(typ fsmv1.CommandType, m proto.Message) []byte {
	p, _ := proto.Marshal(m)
	b, _ := proto.Marshal(&fsmv1.Command{FormatVersion: peerWireFormat, Type: typ, Payload: p})
	return b
}

// badCommands decode but must never be applied as a success.
func badCommands(members []string) map[string][]byte {
	huge := strings.Repeat("x", 40<<10)
	set := func(c *fsmv1.SetCommand) []byte { return command(fsmv1.CommandType_COMMAND_TYPE_SET, c) }
	other := "n9"
	if len(members) > 1 {
		other = members[1]
	}
	return map[string][]byte{
		"set-no-idempotency-window": set(&fsmv1.SetCommand{SubjectId: "nemesis", Purpose: "email_marketing",
			State: fsmv1.State_STATE_OPTED_OUT, IdempotencyKey: "nemesis"}),
		"set-40KiB-subject":   set(&fsmv1.SetCommand{SubjectId: huge, Purpose: "email_marketing", State: fsmv1.State_STATE_OPTED_OUT}),
		"set-bad-purpose":     set(&fsmv1.SetCommand{SubjectId: "nemesis", Purpose: "Not A Purpose", State: fsmv1.State_STATE_OPTED_OUT}),
		"set-unknown-state":   set(&fsmv1.SetCommand{SubjectId: "nemesis", Purpose: "email_marketing", State: 9}),
		"set-40KiB-idem-key":  set(&fsmv1.SetCommand{SubjectId: "nemesis", Purpose: "email_marketing", State: fsmv1.State_STATE_OPTED_OUT, IdempotencyKey: huge, IdempotencyTtlNanos: 1e12}),
		"register-40KiB-node": command(fsmv1.CommandType_COMMAND_TYPE_REGISTER_NODE, &fsmv1.RegisterNodeCommand{NodeId: huge, ApiAddress: "127.0.0.1:1"}),
		"register-other-node": command(fsmv1.CommandType_COMMAND_TYPE_REGISTER_NODE, &fsmv1.RegisterNodeCommand{NodeId: other, ApiAddress: "127.0.0.1:1"}),
		"define-bad-purpose": command(fsmv1.CommandType_COMMAND_TYPE_DEFINE_PURPOSE, &fsmv1.DefinePurposeCommand{
			Purpose: &fsmv1.PurposeDef{Name: "Bad Name", DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_ALLOW}}),
		"define-no-default": command(fsmv1.CommandType_COMMAND_TYPE_DEFINE_PURPOSE, &fsmv1.DefinePurposeCommand{
			Purpose: &fsmv1.PurposeDef{Name: "nemesis"}}),
		"put-principal-bad-name": command(fsmv1.CommandType_COMMAND_TYPE_PUT_PRINCIPAL, &fsmv1.PutPrincipalCommand{
			Name: "bad name", Kind: fsmv1.PrincipalKind_PRINCIPAL_KIND_CERTIFICATE, Role: fsmv1.Role_ROLE_ADMIN}),
		"init-bad-catalog": command(fsmv1.CommandType_COMMAND_TYPE_INIT_CLUSTER, &fsmv1.InitClusterCommand{
			ErasureKey: make([]byte, 32), Purposes: []*fsmv1.PurposeDef{{Name: "all"}}}),
		"term-start":     command(fsmv1.CommandType_COMMAND_TYPE_TERM_START, &fsmv1.TermStartCommand{LeaderId: "nemesis"}),
		"unknown-type":   command(99, &fsmv1.TermStartCommand{}),
		"newer-format":   mustMarshal(&fsmv1.Command{FormatVersion: 1 << 20, Type: fsmv1.CommandType_COMMAND_TYPE_SET}),
		"garbage":        []byte("\xff\xfe not a command"),
		"empty":          nil,
		"oversized-3MiB": bytes.Repeat([]byte{0x0a}, 3<<20),
	}
}

func mustMarshal(m proto.Message) []byte {
	b, _ := proto.Marshal(m)
	return b
}

// headers are the callers the requests claim to come from.
func (a *peerAttack) headers() map[string]map[string]string {
	h := map[string]map[string]string{
		"no-header":   nil,
		"stranger":    {"Optout-Node-Id": "nemesis"},
		"bad-id":      {"Optout-Node-Id": "not a node id/.."},
		"long-header": {"Optout-Node-Id": strings.Repeat("n", 4096)},
	}
	if len(a.members) > 0 {
		// A buggy or skewed peer: a member's id, with the bad commands.
		h["member"] = map[string]string{"Optout-Node-Id": a.members[0]}
	}
	return h
}

func withHeader[T any](req *connect.Request[T], h map[string]string) *connect.Request[T] {
	for k, v := range h {
		req.Header().Set(k, v)
	}
	return req
}

// round sends every request once.
func (a *peerAttack) round(ctx context.Context) {
	cmds := badCommands(a.members)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for who, h := range a.headers() {
		for _, name := range names {
			if ctx.Err() != nil {
				return
			}
			resp, err := a.client.Propose(ctx, withHeader(connect.NewRequest(&peerv1.ProposeRequest{Command: cmds[name]}), h))
			applied := false
			if err == nil {
				var res fsmv1.Result
				applied = proto.Unmarshal(resp.Msg.Result, &res) == nil && res.ErrorCode == fsmv1.ErrorCode_ERROR_CODE_UNSPECIFIED
			}
			a.note("Propose "+name+" as "+who, applied, err)
		}
		if who != "member" {
			_, err := a.client.ReadIndex(ctx, withHeader(connect.NewRequest(&peerv1.ReadIndexRequest{}), h))
			a.note("ReadIndex as "+who, err == nil, err)
			_, err = a.client.ChangeMembership(ctx, withHeader(connect.NewRequest(&peerv1.ChangeMembershipRequest{
				Op: peerv1.MembershipOp_MEMBERSHIP_OP_REMOVE, Id: a.memberOr("n1")}), h))
			a.note("ChangeMembership as "+who, err == nil, err)
		}
		// A forged removal notice: the node must ask the leader before it
		// believes it. (Not a finding by itself; a node that believed it
		// would stop serving and fail the convergence check.)
		_, _ = a.client.Removed(ctx, withHeader(connect.NewRequest(&peerv1.RemovedRequest{Index: 1 << 40}), h))
	}
	a.raw(ctx)
	a.mu.Lock()
	a.rounds++
	a.mu.Unlock()
}

func (a *peerAttack) memberOr(def string) string {
	if len(a.members) > 0 {
		return a.members[len(a.members)-1]
	}
	return def
}

// raw sends bytes that are no protocol: a bad protocol byte, and random
// bytes after each good one.
func (a *peerAttack) raw(ctx context.Context) {
	junk := make([]byte, 512)
	_, _ = rand.Read(junk)
	for _, first := range []byte{'X', raftProtocolPeer, raftProtocolRaft} {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := dialProtocol(dctx, a.addr, first)
		cancel()
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(junk)
		_, _ = c.Read(make([]byte, 64))
		_ = c.Close()
		a.mu.Lock()
		a.junk++
		a.mu.Unlock()
	}
}

func (a *peerAttack) note(what string, applied bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent++
	switch {
	case applied:
		a.findings = append(a.findings, fmt.Sprintf("%s to %s was accepted", what, a.addr))
	case err != nil:
		a.refused++
	default:
		a.failures++
	}
}

// run sends rounds until ctx ends, pausing between them so the fault adds
// load but does not starve the workload.
func (a *peerAttack) run(ctx context.Context) {
	for ctx.Err() == nil {
		a.round(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (a *peerAttack) summary() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("sent %d bad peer requests in %d rounds: %d refused, %d answered as rule failures, %d accepted; and %d junk connections",
		a.sent, a.rounds, a.refused, a.failures, len(a.findings), a.junk)
}

func (a *peerAttack) found() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	// One line per kind of acceptance is enough for the report.
	seen := map[string]bool{}
	var out []string
	for _, f := range a.findings {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

func beginBadPeerRequests(ctx context.Context, env *Env) (Effect, error) {
	target, note := leaderOr(ctx, env)
	addr := env.Cluster.RaftAddr(target)
	if addr == "" {
		return Effect{}, fmt.Errorf("no Raft address for %s", target)
	}
	a := newPeerAttack(addr, without(env.Cluster.NodeIDs(), target))
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); a.run(actx) }()
	stop := func(context.Context) string {
		cancel()
		<-done
		a.hc.CloseIdleConnections()
		return a.summary()
	}
	return Effect{Targets: []string{target}, Note: strings.TrimSpace("the leader's Raft port. " + note), Undo: stop, Findings: a.found}, nil
}
