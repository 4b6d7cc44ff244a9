package offline_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/cluster/clustertest"
	"github.com/optoutd/optoutd/offline"
)

// TestRecoverSurvivorOfLostQuorum: two of three nodes are lost for good;
// the survivor, recovered offline into a one-node configuration, starts,
// elects itself and serves every earlier write and new ones. Small
// snapshot settings make the recovery restore a snapshot and replay a log
// tail.
func TestRecoverSurvivorOfLostQuorum(t *testing.T) {
	c := clustertest.New(t, 3, func(cfg *cluster.Config) {
		cfg.SnapshotThreshold = 64
		cfg.TrailingLogs = 16
		cfg.SnapshotInterval = 50 * time.Millisecond
	})
	c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 2*time.Minute)
	subjects, _ := loadHistory(t, ctx, c.Nodes(), 300)
	n1 := c.Node("n1")
	var want snapshotOfState
	if _, err := n1.Read(ctx, func(v optoutd.View) error { want = capture(t, v, subjects, ^uint64(0)); return nil }); err != nil {
		t.Fatal(err)
	}
	snaps, err := raft.NewFileSnapshotStore(dataDir(t, c, "n1"), 2, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := snaps.List(); len(list) == 0 {
		t.Fatal("no snapshot on n1: the test means to recover from one")
	}

	c.Stop("n2")
	c.Stop("n3")
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, noQuorumErr := set(wctx, n1, "no-quorum", optoutd.StateOptedOut, nil)
	cancel()
	if noQuorumErr == nil {
		t.Fatal("a write succeeded without a quorum")
	}
	// Recovery needs the node stopped: its files are locked.
	if _, err := offline.RecoverCluster(offline.RecoverConfig{DataDir: dataDir(t, c, "n1"), ID: "n1", Peers: map[string]string{"n1": c.RaftAddr("n1")}}); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("recover of a running node: %v", err)
	}
	c.Stop("n1")

	meta, err := offline.RecoverCluster(offline.RecoverConfig{DataDir: dataDir(t, c, "n1"), ID: "n1", Peers: map[string]string{"n1": c.RaftAddr("n1")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Configuration.Servers) != 1 || meta.Configuration.Servers[0].ID != "n1" {
		t.Fatalf("recovered configuration %+v", meta.Configuration)
	}
	if _, idx := digestFile(t, filepath.Join(dataDir(t, c, "n1"), "fsm.db")); idx != meta.Index {
		t.Fatalf("recovered state at %d, snapshot at %d: the node would restore again on start", idx, meta.Index)
	}

	n1 = c.Start("n1")
	c.WaitLeader(20 * time.Second)
	var got snapshotOfState
	if _, err := n1.Read(ctx, func(v optoutd.View) error { got = capture(t, v, subjects, ^uint64(0)); return nil }); err != nil {
		t.Fatal(err)
	}
	// The write made without a quorum may be in the survivor's log:
	// recovery replays uncommitted entries too, which its "outcome
	// unknown" answer allows. Nothing else may differ.
	var extra []optoutd.AuditEntry
	got.changes = slices.DeleteFunc(got.changes, func(e optoutd.AuditEntry) bool {
		if e.SubjectID == "no-quorum" {
			extra = append(extra, e)
			return true
		}
		return false
	})
	if len(extra) > 0 && (len(extra) > 1 || optoutd.ErrorCode(noQuorumErr) != optoutd.OutcomeUnknown) {
		t.Fatalf("recovered %d entries of the write made without a quorum, which failed with %v", len(extra), noQuorumErr)
	}
	t.Logf("the write made without a quorum (%v) is recovered: %v", noQuorumErr, len(extra) == 1)
	if !reflect.DeepEqual(got.records, want.records) || !reflect.DeepEqual(got.changes, want.changes) || !got.audit.OK() {
		t.Fatalf("after recovery: %d records, %d audit entries (%+v); before: %d, %d", len(got.records), len(got.changes), got.audit, len(want.records), len(want.changes))
	}
	if _, err := set(ctx, n1, "after-recovery", optoutd.StateOptedOut, nil); err != nil {
		t.Fatal(err)
	}
	cf := n1.Raft().GetConfiguration()
	if err := cf.Error(); err != nil || len(cf.Configuration().Servers) != 1 {
		t.Fatalf("configuration after start: %+v %v", cf.Configuration(), err)
	}
}

// TestRecoverFlagErrors: recover refuses bad input, naming the flag,
// before touching anything.
func TestRecoverFlagErrors(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  offline.RecoverConfig
		want string
	}{
		{"no data dir", offline.RecoverConfig{Peers: map[string]string{"n1": "127.0.0.1:1"}}, "--data-dir"},
		{"no peers", offline.RecoverConfig{DataDir: empty}, "--peers"},
		{"self not a peer", offline.RecoverConfig{DataDir: empty, ID: "n2", Peers: map[string]string{"n1": "127.0.0.1:1"}}, "--peers"},
		{"not a data dir", offline.RecoverConfig{DataDir: empty, Peers: map[string]string{"n1": "127.0.0.1:1"}}, "no raft.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := offline.RecoverCluster(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if left := entries(t, empty); len(left) != 0 {
				t.Fatalf("created %v", left)
			}
		})
	}
	for _, bad := range []string{"n1", "n1=", "n1=localhost", "n1=127.0.0.1:1,n1=127.0.0.1:2", "n1=127.0.0.1:1,n2=127.0.0.1:1", "n 1=127.0.0.1:1"} {
		if _, err := cluster.ParsePeers(bad); err == nil || !strings.Contains(err.Error(), "--peers") {
			t.Errorf("ParsePeers(%q): %v", bad, err)
		}
	}
}

func dataDir(t *testing.T, c *clustertest.Cluster, id string) string {
	t.Helper()
	var dir string
	c.Configure(id, func(cfg *cluster.Config) { dir = cfg.DataDir })
	return dir
}
