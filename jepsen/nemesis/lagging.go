package nemesis

import (
	"context"
	"fmt"
	"sync"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// FindLeader asks every node in among for its status, concurrently, until
// one says it is the leader (the highest term wins) or ctx ends.
func FindLeader(ctx context.Context, c Cluster, among []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		sts := statuses(ctx, c, among)
		var best *optoutv1.StatusResponse
		for _, st := range sts {
			if st != nil && st.RaftState == "Leader" && (best == nil || st.Term > best.Term) {
				best = st
			}
		}
		if best != nil {
			return best.NodeId, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("nemesis: no leader among %v: %w", among, ctx.Err())
		case <-tick.C:
		}
	}
}

// statuses asks each node with a 1 s bound; nil for nodes that did not
// answer.
func statuses(ctx context.Context, c Cluster, ids []string) map[string]*optoutv1.StatusResponse {
	out := map[string]*optoutv1.StatusResponse{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			st, err := c.Status(sctx, id)
			if err != nil {
				st = nil
			}
			mu.Lock()
			out[id] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// beginLaggingFollower isolates a follower and ends once the leader's log
// starts past the follower's last index (the leader then has no entries to
// send it: healing forces InstallSnapshot). The server must run with a
// small --snapshot-threshold and --trailing-logs for this to happen fast.
func beginLaggingFollower(ctx context.Context, env *Env) (Effect, error) {
	l, note := leaderOr(ctx, env)
	f := env.pick(orAll(without(env.Up, l), env.Up))
	var (
		mu        sync.Mutex
		fLast     uint64
		leaderIdx uint64
		leaderID  string
		forced    bool
	)
	until := func(ctx context.Context) (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		sts := statuses(ctx, env.Cluster, env.Cluster.NodeIDs())
		if fs := sts[f]; fs != nil && fs.LastLogIndex > fLast {
			// The isolated follower may still append what was in flight;
			// track its highest index.
			fLast = fs.LastLogIndex
		}
		for id, st := range sts {
			if id != f && st != nil && st.RaftState == "Leader" && fLast > 0 && st.FirstLogIndex > fLast+1 {
				leaderID, leaderIdx, forced = id, st.FirstLogIndex, true
				return true, fmt.Sprintf("follower %s last index %d; leader %s first index %d: InstallSnapshot forced", f, fLast, id, st.FirstLogIndex)
			}
		}
		return false, fmt.Sprintf("follower %s last index %d; leader has not truncated past it yet", f, fLast)
	}
	after := func(ctx context.Context) string {
		mu.Lock()
		ok, idx, lid := forced, leaderIdx, leaderID
		mu.Unlock()
		if !ok {
			return "the leader never truncated past the follower: no InstallSnapshot was forced"
		}
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			sctx, scancel := context.WithTimeout(ctx, time.Second)
			st, err := env.Cluster.Status(sctx, f)
			scancel()
			if err == nil && st.AppliedIndex >= idx {
				return fmt.Sprintf("follower %s caught up to applied %d (leader %s had truncated below %d); its snapshot index is now %d",
					f, st.AppliedIndex, lid, idx, st.LastSnapshotIndex)
			}
			select {
			case <-ctx.Done():
				return fmt.Sprintf("follower %s did not catch up past %d within 20s after healing", f, idx)
			case <-tick.C:
			}
		}
	}
	return Effect{Targets: []string{f}, Drops: Isolate(f, env.Cluster.NodeIDs()), Note: note, Until: until, After: after}, nil
}
