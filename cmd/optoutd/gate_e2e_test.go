package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/optoutd/optoutd/client"
)

// freeze stops p (SIGSTOP) until the returned func resumes it; the test's
// cleanup resumes it too, so a failing test leaves no stopped process.
func freeze(t *testing.T, p *proc) func() {
	t.Helper()
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, pid)
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	return resume
}

// waitStopped returns once every thread of pid is stopped: kill returns
// when SIGSTOP is queued, and a thread that is running goes on until it
// next enters the kernel, so a request sent at once could still be
// answered (a leader frozen a moment too late confirmed a read once).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if allThreadsStopped(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not stop within 10s of SIGSTOP", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// allThreadsStopped reads each thread's state from /proc: T is stopped.
func allThreadsStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		// The state follows the command name, which is in parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}

// TestGateFailsClosedAgainstRealNodes: against three real processes, Gate
// (and GateBatch) answer deny, with the error, whenever the cluster cannot
// give a linearizable answer in time: the answering node cut off from the
// quorum (the other two stopped), the only node given answering slower
// than the deadline (stopped: its socket accepts, nothing answers), and
// the whole cluster stopped. In between, and after, it allows.
func TestGateFailsClosedAgainstRealNodes(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p0 := pc.procs[0]
	one := pc.clientOf(p0)
	allows := func(when string) {
		t.Helper()
		d, err := one.Gate(ctx, "gate-u1", "analytics")
		if err != nil || !d.Allow {
			t.Fatalf("%s: gate %+v, %v", when, d, err)
		}
	}
	failsClosed := func(when string, c *client.Client) {
		t.Helper()
		dctx, dcancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer dcancel()
		d, err := c.Gate(dctx, "gate-u1", "analytics")
		if d.Allow || !d.FailedClosed || err == nil {
			t.Fatalf("%s: gate %+v, %v; want a fail-closed deny", when, d, err)
		}
		ds, err := c.GateBatch(dctx, []client.GateCheck{{Subject: "gate-u1", Purpose: "analytics"}, {Subject: "gate-u2", Purpose: "analytics"}})
		if err == nil || ds[0].Allow || ds[1].Allow {
			t.Fatalf("%s: gate batch %+v, %v", when, ds, err)
		}
		t.Logf("%s: denied: %v", when, err)
	}
	allows("before any fault")

	r1, r2 := freeze(t, pc.procs[1]), freeze(t, pc.procs[2])
	failsClosed("cut off from the quorum", one)
	r1()
	r2()
	pc.waitReady(30 * time.Second)
	allows("after the quorum came back")

	r0 := freeze(t, p0)
	failsClosed("answering slower than the deadline", one)
	r0()
	pc.waitReady(30 * time.Second)
	allows("after the node resumed")

	all := pc.all()
	for _, p := range pc.procs {
		stopBySIGTERM(t, p, 20*time.Second)
	}
	failsClosed("the whole cluster stopped", all)
}
