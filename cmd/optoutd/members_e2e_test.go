package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
)

// TestJoinWithAWrongAddressFailsClearly: --join pointing nowhere gives up
// after --join-timeout with an error that names the flag.
func TestJoinWithAWrongAddressFailsClearly(t *testing.T) {
	addrs := freePorts(t, 3)
	var out bytes.Buffer
	m := NewMain(&out, &out)
	err := m.ParseFlags([]string{"server", "--id", "n9", "--data-dir", t.TempDir(),
		"--api-addr", addrs[0], "--raft-addr", addrs[1], "--join", addrs[2], "--join-timeout", "2s", "--log-level", "error"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = m.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "--join") || !strings.Contains(err.Error(), addrs[2]) {
		t.Fatalf("join through a dead address: %v", err)
	}
}

// phase records when a membership phase ran, to attribute gaps.
type phase struct {
	name       string
	start, end time.Time
}

// opLog records successful operations' completion times.
type opLog struct {
	mu     sync.Mutex
	writes []time.Time
	reads  []time.Time
	acked  map[string]uint64
	failed int
}

func (l *opLog) maxGap(ts []time.Time, p phase) time.Duration {
	var in []time.Time
	for _, t := range ts {
		if !t.Before(p.start) && !t.After(p.end) {
			in = append(in, t)
		}
	}
	sort.Slice(in, func(i, j int) bool { return in[i].Before(in[j]) })
	prev, gap := p.start, time.Duration(0)
	for _, t := range in {
		gap = max(gap, t.Sub(prev))
		prev = t
	}
	return max(gap, p.end.Sub(prev))
}

// TestScaleAndRollingRestartThroughProcesses runs the operations the
// operations guide documents against real processes under load: join two
// learners (promoted automatically), remove them, then restart every node
// in turn. No acknowledged write may be lost. It logs the longest gap
// without a successful write and read in each phase: the unavailability
// figures of docs/operations.md.
func TestScaleAndRollingRestartThroughProcesses(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	extra := freePorts(t, 4)
	root := t.TempDir()
	var joinVia []string
	for _, p := range pc.procs {
		joinVia = append(joinVia, p.api)
	}
	var all []string
	all = append(all, joinVia...)
	all = append(all, extra[0], extra[2])
	c, err := client.New(all)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	l := &opLog{acked: map[string]uint64{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
				subject := fmt.Sprintf("ops-%d-%d", w, i)
				r, err := c.Set(octx, &optoutv1.SetRequest{SubjectId: subject, Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT})
				_, rerr := c.Check(octx, &optoutv1.CheckRequest{SubjectId: subject, Purpose: "analytics"})
				ocancel()
				now := time.Now()
				l.mu.Lock()
				if err == nil {
					l.writes = append(l.writes, now)
					l.acked[subject] = r.Version
				}
				if rerr == nil {
					l.reads = append(l.reads, now)
				} else {
					l.failed++
				}
				l.mu.Unlock()
			}
		}()
	}
	var phases []phase
	begin := func(name string) func() {
		p := phase{name: name, start: time.Now()}
		return func() { p.end = time.Now(); phases = append(phases, p) }
	}

	// 3 -> 5: two learners join and are promoted once caught up.
	done := begin("scale 3->5")
	for i, id := range []string{"n4", "n5"} {
		p := &proc{id: id, api: extra[2*i], raft: extra[2*i+1]}
		p.args = []string{"server", "--id", id, "--data-dir", filepath.Join(root, id), "--api-addr", p.api,
			"--raft-addr", p.raft, "--join", strings.Join(joinVia, ","), "--log-level", "info"}
		pc.procs = append(pc.procs, p)
		pc.start(p)
	}
	waitVoters(t, ctx, c, 5)
	done()

	// 5 -> 3: remove them again.
	done = begin("scale 5->3")
	for _, id := range []string{"n4", "n5"} {
		if _, err := c.RemoveMember(ctx, id); err != nil {
			t.Fatalf("remove %s: %v", id, err)
		}
	}
	waitVoters(t, ctx, c, 3)
	done()
	for _, p := range pc.procs[3:] {
		pc.kill(p)
	}
	pc.procs = pc.procs[:3]

	// Rolling restart: SIGTERM, restart, wait ready; followers first, the
	// leader last (the order docs/operations.md gives).
	done = begin("rolling restart")
	leader := pc.leader(ctx)
	for _, p := range append(pc.followers(leader), leader) {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.done
		p.cmd = nil
		pc.start(p)
		pc.waitReady(60 * time.Second)
	}
	done()
	close(stop)
	wg.Wait()

	for _, p := range pc.procs {
		cl := pc.clientOf(p)
		for s, v := range l.acked {
			g, err := cl.Get(ctx, &optoutv1.GetRequest{SubjectId: s, Purpose: "analytics"})
			if err != nil || g.Record.Version != v {
				t.Fatalf("acknowledged write %s@%d on %s: %v %v", s, v, p.id, g, err)
			}
		}
	}
	for _, p := range phases {
		t.Logf("%-16s %6.2fs: longest gap without a successful write %.3fs, without a successful read %.3fs",
			p.name, p.end.Sub(p.start).Seconds(), l.maxGap(l.writes, p).Seconds(), l.maxGap(l.reads, p).Seconds())
	}
	t.Logf("%d acknowledged writes checked on %d nodes; %d reads failed", len(l.acked), len(pc.procs), l.failed)
}

func waitVoters(t *testing.T, ctx context.Context, c *client.Client, n int) {
	t.Helper()
	for {
		st, err := c.Status(ctx)
		if err == nil {
			voters := 0
			for _, nd := range st.Nodes {
				if nd.Voter {
					voters++
				}
			}
			if voters == n && len(st.Nodes) == n {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("never reached %d voters: %v %v", n, st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestJoinSkipsARemovedMember: a removed node still answers, with
// failed_precondition; a new node listing it first in --join must go on to
// the other members (found by the chaos suite's membership nemesis).
func TestJoinSkipsARemovedMember(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader := pc.leader(ctx)
	gone := pc.followers(leader)[0]
	c := pc.all()
	if _, err := c.RemoveMember(ctx, gone.id); err != nil {
		t.Fatal(err)
	}
	// Wait until the removed node says so.
	for {
		_, err := pc.clientOf(gone).Check(ctx, &optoutv1.CheckRequest{SubjectId: "x", Purpose: "analytics"})
		if client.FromRemovedNode(err) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("removed node never said so: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Its readiness and its log say what to do, not only "not ready".
	resp, err := http.Get("http://" + gone.api + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	advice := "this node (" + gone.id + ") was removed from the cluster and serves nothing: stop it. To use it again, delete its data directory"
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), advice) || !strings.Contains(string(body), "--join") {
		t.Errorf("removed node's /readyz: %d %q, want 503 saying %q", resp.StatusCode, body, advice)
	}
	for !strings.Contains(gone.log.String(), "level=ERROR msg=\""+advice) {
		if ctx.Err() != nil {
			t.Fatalf("the removed node never logged what to do:\n%s", tail(gone.log.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	addrs := freePorts(t, 2)
	p := &proc{id: "n4", api: addrs[0], raft: addrs[1]}
	p.args = []string{"server", "--id", "n4", "--data-dir", filepath.Join(t.TempDir(), "n4"), "--api-addr", p.api,
		"--raft-addr", p.raft, "--join", gone.api + "," + leader.api, "--join-timeout", "30s", "--log-level", "info"}
	pc.procs = append(pc.procs, p)
	pc.start(p)
	lc := pc.clientOf(leader)
	for {
		st, err := lc.Status(ctx)
		found := false
		if err == nil {
			for _, n := range st.Nodes {
				found = found || n.Id == "n4"
			}
		}
		if found {
			break
		}
		select {
		case <-p.done:
			t.Fatalf("n4 exited instead of joining: %v\n%s", p.exitErr, tail(p.log.String(), 2000))
		case <-ctx.Done():
			t.Fatal("n4 never joined")
		case <-time.After(50 * time.Millisecond):
		}
	}
}
