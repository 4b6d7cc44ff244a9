package cluster_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/cluster/clustertest"
)

// TestStateFileTornByAMachineCrashIsRebuilt: fsm.db's commits are not
// fsynced one by one (Config.FSMSyncInterval), so after a crash of the
// machine the file may be torn. Such a node (its marker says the file was
// open, unsynced, during another boot; the file itself is overwritten with
// garbage here) must come back with every record, rebuilt from its newest
// snapshot and the entries of its Raft log after it, without reading the
// file.
func TestStateFileTornByAMachineCrashIsRebuilt(t *testing.T) {
	c := clustertest.New(t, 3, func(cfg *cluster.Config) {
		cfg.SnapshotInterval = time.Hour // snapshots only when the test asks
	})
	leader := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 60*time.Second)
	want := map[string]uint64{}
	write := func(from, to int) {
		for i := from; i < to; i++ {
			rec, err := set(ctx, leader, fmt.Sprintf("torn%d", i), optoutd.StateOptedOut, nil)
			if err != nil {
				t.Fatal(err)
			}
			want[rec.SubjectID] = rec.Version
		}
	}
	write(0, 60)
	f := c.Followers(leader)[0]
	fid := f.ID()
	clustertest.Eventually(t, 20*time.Second, func() error {
		if got, w := f.FSM().AppliedIndex(), leader.FSM().AppliedIndex(); got < w {
			return fmt.Errorf("%s applied %d of %d", fid, got, w)
		}
		return nil
	})
	if err := f.Raft().Snapshot().Error(); err != nil {
		t.Fatalf("follower snapshot: %v", err)
	}
	write(60, 120) // after the snapshot: only in the log
	clustertest.Eventually(t, 20*time.Second, func() error {
		if got, w := f.FSM().AppliedIndex(), leader.FSM().AppliedIndex(); got < w {
			return fmt.Errorf("%s applied %d of %d", fid, got, w)
		}
		return nil
	})
	dir := c.DataDir(fid)
	c.Stop(fid)

	db := filepath.Join(dir, "fsm.db")
	if err := os.WriteFile(db+".sync", []byte("open another-boot\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	n := c.Start(fid)
	if !n.FSM().Rebuilt() {
		t.Fatal("the node kept a state file that a machine crash may have torn")
	}
	c.WaitLeader(20 * time.Second)
	for s, v := range want {
		if rec, ok, _, err := get(ctx, n, s); err != nil || !ok || rec.Version != v {
			t.Fatalf("after the rebuild, %s on %s: %+v ok=%v err=%v (want version %d)", s, fid, rec, ok, err, v)
		}
	}
}
