package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"google.golang.org/protobuf/proto"
)

const benchPurpose = "bench"

// optoutdSystem runs the real optoutd binary: three `optoutd server`
// processes with default settings, bbolt files under the run's temp dir.
type optoutdSystem struct {
	bin   string
	procs []*proc
	api   []string
	admin []*client.Client // one per node, that node only

	mu      sync.Mutex
	clients []*client.Client
}

func (s *optoutdSystem) Name() string          { return sysOptoutd }
func (s *optoutdSystem) NodeName(i int) string { return s.procs[i].name }

func (s *optoutdSystem) Settings() map[string]string {
	return map[string]string{
		"binary":             "optoutd server (built from the repository with go build)",
		"heartbeat-timeout":  "500ms (default)",
		"election-timeout":   "500ms (default)",
		"leader-lease":       "250ms (default)",
		"commit-timeout":     "10ms (default)",
		"snapshot-threshold": "8192 entries (default), checked every 30s",
		"trailing-logs":      "10240 (default)",
		"storage":            "raft.db (raft-boltdb, fsync per append) + fsm.db (bbolt, fsync per applied batch)",
		"client":             "github.com/optoutd/optoutd/client (Connect protocol, protobuf, HTTP/1.1)",
		"log-level":          "warn",
	}
}

func (s *optoutdSystem) Start(ctx context.Context, dir string) error {
	addrs, err := freePorts(6)
	if err != nil {
		return err
	}
	names := []string{"n1", "n2", "n3"}
	initial := joinInitial(names, addrs[3:], "")
	s.api = addrs[:3]
	for i, name := range names {
		p := &proc{
			name: name, bin: s.bin, logPath: filepath.Join(dir, name+".log"),
			args: []string{"server", "--id", name, "--data-dir", filepath.Join(dir, name),
				"--api-addr", addrs[i], "--raft-addr", addrs[3+i], "--initial-cluster", initial,
				"--log-level", "warn"},
		}
		s.procs = append(s.procs, p)
		if err := p.start(); err != nil {
			return err
		}
		c, err := client.New([]string{addrs[i]})
		if err != nil {
			return err
		}
		s.admin = append(s.admin, c)
	}
	for i := range s.procs {
		if err := s.waitReady(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

func (s *optoutdSystem) waitReady(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return waitHTTP200(ctx, s.procs[i], "http://"+s.api[i]+"/readyz")
}

func (s *optoutdSystem) Close() {
	s.mu.Lock()
	for _, c := range s.clients {
		c.Close()
	}
	s.clients = nil
	s.mu.Unlock()
	for _, c := range s.admin {
		c.Close()
	}
	for _, p := range s.procs {
		p.kill()
	}
}

func (s *optoutdSystem) Kill(i int) { s.procs[i].kill() }

func (s *optoutdSystem) Restart(ctx context.Context, i int) error {
	if err := s.procs[i].start(); err != nil {
		return err
	}
	return s.waitReady(ctx, i)
}

func (s *optoutdSystem) Check() error { return checkProcs(s.procs) }
func (s *optoutdSystem) PIDs() []int  { return pids(s.procs) }

func (s *optoutdSystem) Leader(ctx context.Context) (int, error) {
	leader := -1
	err := retry(ctx, func(ctx context.Context) error {
		if leader = s.PollLeader(ctx); leader < 0 {
			return errors.New("no node reports itself leader")
		}
		return nil
	})
	return leader, err
}

func (s *optoutdSystem) PollLeader(ctx context.Context) int {
	for i, c := range s.admin {
		if !s.procs[i].running() {
			continue
		}
		st, err := c.StatusOf(ctx, 0)
		if err == nil && st.RaftState == "Leader" {
			return i
		}
	}
	return -1
}

// Clients gives each worker a product client. The product client sends
// every request to the endpoint that last answered, so to spread load a
// worker's client lists every node but starts at "its" node; on failure it
// moves on to the next, as a real client would.
func (s *optoutdSystem) Clients(ctx context.Context, target string) (func(int) Ops, error) {
	var starts []int
	switch target {
	case targetAll:
		starts = []int{0, 1, 2}
	case targetLeader, targetFollowers:
		l, err := s.Leader(ctx)
		if err != nil {
			return nil, err
		}
		if target == targetLeader {
			starts = []int{l}
		} else {
			starts = others(len(s.api), l)
		}
	default:
		return nil, fmt.Errorf("bench: unknown target %q", target)
	}
	var ops []Ops
	for _, k := range starts {
		c, err := client.New(rotate(s.api, k))
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.clients = append(s.clients, c)
		s.mu.Unlock()
		ops = append(ops, optoutdOps{c})
	}
	return func(w int) Ops { return ops[w%len(ops)] }, nil
}

type optoutdOps struct{ c *client.Client }

func stateFor(seq uint64) optoutv1.State {
	if seq%2 == 0 {
		return optoutv1.State_STATE_OPTED_OUT
	}
	return optoutv1.State_STATE_OPTED_IN
}

func (o optoutdOps) Read(ctx context.Context, subject string) error {
	r, err := o.c.Check(ctx, &optoutv1.CheckRequest{SubjectId: subject, Purpose: benchPurpose})
	if err != nil {
		return err
	}
	if r.State == optoutv1.State_STATE_UNSPECIFIED {
		return errMissing
	}
	return nil
}

func (o optoutdOps) Write(ctx context.Context, subject string, seq uint64) error {
	_, err := o.c.Set(ctx, &optoutv1.SetRequest{
		SubjectId: subject, Purpose: benchPurpose, State: stateFor(seq),
		Source: "bench", Reason: "load",
	})
	return err
}

func (o optoutdOps) CAS(ctx context.Context, subject string, expected, seq uint64) (uint64, error) {
	r, err := o.c.Set(ctx, &optoutv1.SetRequest{
		SubjectId: subject, Purpose: benchPurpose, State: stateFor(seq),
		Source: "bench", Reason: "load", ExpectedVersion: proto.Uint64(expected),
	})
	if err != nil {
		if connect.CodeOf(err) == connect.CodeFailedPrecondition {
			return 0, fmt.Errorf("%w: %w", errConflict, err)
		}
		return 0, err
	}
	return r.Version, nil
}

func (o optoutdOps) Version(ctx context.Context, subject string) (uint64, error) {
	r, err := o.c.Get(ctx, &optoutv1.GetRequest{SubjectId: subject, Purpose: benchPurpose})
	if connect.CodeOf(err) == connect.CodeNotFound {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return r.Record.GetVersion(), nil
}
