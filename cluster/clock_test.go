package cluster_test

import (
	"testing"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/cluster/clustertest"
)

// TestNewLeaderWithASlowClockNeverStampsBackwards: n2's clock is an hour
// behind. Once it leads, its writes carry times no earlier than the
// entries before them, so times in the log follow its order (the state at
// time T is well defined).
func TestNewLeaderWithASlowClockNeverStampsBackwards(t *testing.T) {
	c := clustertest.New(t, 3, func(cfg *cluster.Config) {
		if cfg.ID == "n2" {
			cfg.TestingClock = func() time.Time { return time.Now().Add(-time.Hour) }
		}
	})
	ctx := clustertest.Ctx(t, 60*time.Second)
	first := makeLeader(t, c, ctx, "n1")
	before, err := set(ctx, first, "a", optoutd.StateOptedOut, nil)
	if err != nil {
		t.Fatal(err)
	}
	slow := makeLeader(t, c, ctx, "n2")
	after, err := set(ctx, slow, "b", optoutd.StateOptedOut, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version <= before.Version {
		t.Fatalf("versions %d then %d", before.Version, after.Version)
	}
	if after.UpdatedAt.Before(before.UpdatedAt) {
		t.Fatalf("the slow leader stamped %v at version %d, before %v at version %d", after.UpdatedAt, after.Version, before.UpdatedAt, before.Version)
	}
}
