package cluster_test

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/cluster/clustertest"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// TestCloseReturnsWhenHalted: a node whose state machine halted on an entry
// it cannot apply still shuts down when asked (SIGTERM calls Close), so the
// documented recovery, "stop it and upgrade the binary", works. Before the
// fix Close waited for Raft, Raft waited for the halted apply, and the
// apply waited for Close.
func TestCloseReturnsWhenHalted(t *testing.T) {
	c := clustertest.New(t, 1)
	n := c.WaitLeader(10 * time.Second)
	// A command of a type no binary knows, put in the log behind the
	// node's back (no validation runs on raft.Apply).
	data, err := proto.Marshal(&fsmv1.Command{FormatVersion: 1, Type: 99})
	if err != nil {
		t.Fatal(err)
	}
	_ = n.Raft().Apply(data, time.Second)
	clustertest.Eventually(t, 10*time.Second, func() error {
		if n.FSM().Halted() == nil {
			return errNotYet
		}
		return nil
	})
	if n.Raft().State() == raft.Shutdown {
		t.Fatal("raft shut down by itself")
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	select {
	case err := <-closed:
		t.Logf("Close of the halted node returned: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Close of a halted node did not return within 30s")
	}
}
