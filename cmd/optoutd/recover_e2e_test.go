package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// TestLostQuorumRecoverProcess: two of three processes are killed for
// good; the survivor is stopped, recovered alone with 'optoutd recover',
// started with its usual command line, and serves every earlier write
// and new ones as a one-node cluster.
func TestLostQuorumRecoverProcess(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	subjects := loadProcCluster(t, ctx, pc.all(), 300, 8)
	n1 := pc.procs[0]
	c1 := pc.clientOf(n1)
	before := make([]subjectView, len(subjects))
	for i, s := range subjects {
		before[i] = viewSubject(t, ctx, c1, s)
	}

	pc.kill(pc.procs[1])
	pc.kill(pc.procs[2])
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := c1.Set(wctx, &optoutv1.SetRequest{SubjectId: "no-quorum", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT})
	wcancel()
	if err == nil {
		t.Fatal("a write succeeded with two of three nodes dead")
	}

	// Stop the survivor (SIGTERM), then recover it offline.
	if err := n1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n1.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("survivor did not exit 30s after SIGTERM\n%s", tail(n1.log.String(), 2000))
	}
	n1.cmd = nil
	dataDir := n1.args[4]
	out := mustRun(t, binary(t), "recover", "--data-dir", dataDir, "--id", "n1", "--peers", "n1="+n1.raft)
	if !strings.Contains(out, "configuration n1="+n1.raft) {
		t.Fatalf("recover printed %q", out)
	}

	pc.start(n1)
	pc.waitReady(60 * time.Second)
	c1 = pc.clientOf(n1)
	for i, s := range subjects {
		if v := viewSubject(t, ctx, c1, s); !sameView(v, before[i]) {
			t.Fatalf("subject %s differs after recovery", s)
		}
	}
	if _, err := c1.Set(ctx, &optoutv1.SetRequest{SubjectId: "after-recovery", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT}); err != nil {
		t.Fatal(err)
	}
	st, err := c1.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	voters := 0
	for _, n := range st.Nodes {
		if n.Voter {
			voters++
		}
	}
	if st.LeaderId != "n1" || voters != 1 {
		t.Fatalf("status after recovery: leader %q, %d voters: %v", st.LeaderId, voters, st.Nodes)
	}
}
