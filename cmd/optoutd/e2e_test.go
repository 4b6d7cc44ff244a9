package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
)

// These tests run the real optoutd binary as three OS processes on
// loopback, the way a new user would.

var (
	buildOnce sync.Once
	binDir    string // made by the first build, removed by TestMain
	binPath   string
	buildErr  error
)

// TestMain removes the binaries the tests built: they are tens of MB, and
// a test run leaves nothing behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("process tests build and run the binary; skipped with -short")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "optoutd-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "optoutd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type proc struct {
	id, api, raft string
	bin           string // if set, the binary this node runs instead of the cluster's
	args          []string
	cmd           *exec.Cmd
	log           *syncBuffer
	done          chan struct{} // closed when the process has exited
	exitErr       error         // cmd.Wait's result, valid once done is closed
}

type procCluster struct {
	t        *testing.T
	bin      string
	procs    []*proc
	readyURL func(*proc) string
	readyTLS *tls.Config
}

func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var lns []net.Listener
	var out []string
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return out
}

func startProcCluster(t *testing.T) *procCluster {
	return startProcClusterWith(t, nil, nil, nil)
}

// startProcClusterWith starts three nodes with extra flags; readyURL and
// readyTLS, if set, say how to poll readiness (e.g. over HTTPS).
func startProcClusterWith(t *testing.T, extra []string, readyURL func(*proc) string, readyTLS *tls.Config) *procCluster {
	pc := &procCluster{t: t, bin: binary(t), readyURL: readyURL, readyTLS: readyTLS}
	addrs := freePorts(t, 6)
	var initial []string
	for i := 0; i < 3; i++ {
		initial = append(initial, fmt.Sprintf("n%d=%s", i+1, addrs[3+i]))
	}
	root := t.TempDir()
	for i := 0; i < 3; i++ {
		p := &proc{id: fmt.Sprintf("n%d", i+1), api: addrs[i], raft: addrs[3+i]}
		p.args = []string{"server", "--id", p.id, "--data-dir", filepath.Join(root, p.id),
			"--api-addr", p.api, "--raft-addr", p.raft, "--initial-cluster", strings.Join(initial, ","),
			"--log-level", "info"}
		p.args = append(p.args, extra...)
		pc.procs = append(pc.procs, p)
		pc.start(p)
	}
	t.Cleanup(func() {
		for _, p := range pc.procs {
			pc.kill(p)
		}
		if t.Failed() {
			for _, p := range pc.procs {
				t.Logf("--- %s log (tail) ---\n%s", p.id, tail(p.log.String(), 3000))
			}
		}
	})
	pc.waitReady(30 * time.Second)
	return pc
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (pc *procCluster) start(p *proc) {
	pc.t.Helper()
	if p.log == nil {
		p.log = &syncBuffer{}
	}
	bin := pc.bin
	if p.bin != "" {
		bin = p.bin
	}
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		pc.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(c *exec.Cmd, p *proc, done chan struct{}) {
		p.exitErr = c.Wait()
		close(done)
	}(p.cmd, p, p.done)
}

func (pc *procCluster) kill(p *proc) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// waitReady polls /readyz on every live process.
func (pc *procCluster) waitReady(timeout time.Duration) {
	pc.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, p := range pc.procs {
		if p.cmd == nil {
			continue
		}
		url := "http://" + p.api + "/readyz"
		hc := http.DefaultClient
		if pc.readyURL != nil {
			url = pc.readyURL(p)
			hc = &http.Client{Transport: &http.Transport{TLSClientConfig: pc.readyTLS}}
		}
		for {
			resp, err := hc.Get(url)
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				pc.t.Fatalf("%s not ready after %v (last: %v)", p.id, timeout, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (pc *procCluster) clientOf(p *proc) *client.Client {
	c, err := client.New([]string{p.api})
	if err != nil {
		pc.t.Fatal(err)
	}
	pc.t.Cleanup(c.Close)
	return c
}

func (pc *procCluster) all() *client.Client {
	var eps []string
	for _, p := range pc.procs {
		eps = append(eps, p.api)
	}
	c, err := client.New(eps)
	if err != nil {
		pc.t.Fatal(err)
	}
	pc.t.Cleanup(c.Close)
	return c
}

func (pc *procCluster) leader(ctx context.Context) *proc {
	pc.t.Helper()
	for {
		for _, p := range pc.procs {
			if p.cmd == nil {
				continue
			}
			st, err := pc.clientOf(p).Status(ctx)
			if err == nil && st.LeaderId != "" {
				for _, q := range pc.procs {
					if q.id == st.LeaderId {
						return q
					}
				}
			}
		}
		if ctx.Err() != nil {
			pc.t.Fatal("no leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// followers returns the nodes other than leader, in start order.
func (pc *procCluster) followers(leader *proc) []*proc {
	var out []*proc
	for _, p := range pc.procs {
		if p != leader {
			out = append(out, p)
		}
	}
	return out
}

// TestProcessClusterSurvivesKill9OfLeader is the "done means" as a
// test: three processes, a write through a follower, kill -9 of the leader
// during a stream of writes, a restart, and every acknowledged write on
// every node.
func TestProcessClusterSurvivesKill9OfLeader(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader := pc.leader(ctx)
	follower := pc.followers(leader)[0]
	res, err := pc.clientOf(follower).Set(ctx, &optoutv1.SetRequest{SubjectId: "via-follower", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT, Source: "e2e"})
	if err != nil {
		t.Fatalf("write through follower %s: %v", follower.id, err)
	}

	var (
		mu      sync.Mutex
		acked   = map[string]uint64{"via-follower": res.Version}
		unknown int
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	c := pc.all()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				subject := fmt.Sprintf("w%d-%d", w, i)
				wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
				r, err := c.Set(wctx, &optoutv1.SetRequest{SubjectId: subject, Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT, Source: "e2e"})
				wcancel()
				mu.Lock()
				switch {
				case err == nil:
					acked[subject] = r.Version
				case client.IsOutcomeUnknown(err):
					unknown++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
				}
			}
		}()
	}
	waitAcked := func(n int) {
		for {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("only %d of %d writes acknowledged", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcked(100)
	pc.kill(leader)
	mu.Lock()
	atKill := len(acked)
	mu.Unlock()
	waitAcked(atKill + 100)
	close(stop)
	wg.Wait()

	pc.start(leader)
	pc.waitReady(30 * time.Second)
	for _, p := range pc.procs {
		cl := pc.clientOf(p)
		for subject, v := range acked {
			g, err := cl.Get(ctx, &optoutv1.GetRequest{SubjectId: subject, Purpose: "email_marketing"})
			if err != nil {
				t.Fatalf("acknowledged write %s@%d missing on %s: %v", subject, v, p.id, err)
			}
			if g.Record.Version != v || g.Record.State != optoutv1.State_STATE_OPTED_OUT {
				t.Fatalf("acknowledged write %s@%d on %s reads %+v", subject, v, p.id, g.Record)
			}
		}
	}
	t.Logf("%d acknowledged writes (and %d of unknown outcome) across kill -9 of %s; all present on 3 nodes", len(acked), unknown, leader.id)
}

// TestSIGTERMExitsCleanly: SIGTERM makes a node exit 0, and it restarts
// from its data directory.
func TestSIGTERMExitsCleanly(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := pc.all().Set(ctx, &optoutv1.SetRequest{SubjectId: "t", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT}); err != nil {
		t.Fatal(err)
	}
	// The leader (which hands leadership off first), then a follower.
	leader := pc.leader(ctx)
	for _, p := range []*proc{leader, pc.followers(leader)[0]} {
		from := len(p.log.String())
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.done:
			err := p.exitErr
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("%s: exit after SIGTERM: %v\n%s", p.id, err, tail(p.log.String(), 2000))
			} else if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no exit 20s after SIGTERM\n%s", p.id, tail(p.log.String(), 2000))
		}
		// A normal shutdown logs no ERROR of its own (hashicorp/raft's
		// "failed to decode incoming command: transport shutdown" was one,
		// and a leader's "peer has newer term" after its hand-off).
		logs := p.log.String()[from:]
		if i := strings.Index(logs, `msg="shutting down"`); i < 0 {
			t.Errorf("%s: no shutting-down line:\n%s", p.id, tail(logs, 2000))
		} else if after := logs[i:]; strings.Contains(after, "level=ERROR") {
			t.Errorf("%s: the shutdown logged an ERROR:\n%s", p.id, tail(after, 3000))
		}
		p.cmd = nil
		pc.start(p)
		pc.waitReady(30 * time.Second)
		g, err := pc.clientOf(p).Get(ctx, &optoutv1.GetRequest{SubjectId: "t", Purpose: "analytics"})
		if err != nil || g.Record.State != optoutv1.State_STATE_OPTED_OUT {
			t.Fatalf("%s after restart: %v %v", p.id, g, err)
		}
	}
}
