package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster/clustertest"
)

// BenchmarkReadIndexRound is one linearizable read on a real three-node
// cluster (issue 11): on the leader, a VerifyLeader round shared by the
// concurrent reads of a batch; on a follower, the read index fetched from
// the leader, then the wait for the local state machine. b.RunParallel
// gives the batching something to batch. Allocation counts are reported;
// speed is compared, never asserted.
func BenchmarkReadIndexRound(b *testing.B) {
	c := clustertest.New(b, 3)
	leader := c.WaitLeader(30 * time.Second)
	for name, n := range map[string]interface {
		Read(context.Context, func(optoutd.View) error) (uint64, error)
	}{"Leader": leader, "Follower": c.Followers(leader)[0]} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := n.Read(ctx, func(optoutd.View) error { return nil }); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
