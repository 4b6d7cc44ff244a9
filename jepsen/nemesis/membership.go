package nemesis

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// beginMembership removes a node (the leader half the time, which makes
// the product transfer leadership first) from the Raft configuration. The
// removed node refuses every request until its data directory is wiped.
// When the fault's time is up, Undo wipes it, restarts it with --join and waits
// until the leader lists it as a voter again (the product adds it as a
// learner and promotes it once it has caught up).
func beginMembership(ctx context.Context, env *Env) (Effect, error) {
	l, note := leaderOr(ctx, env)
	target := l
	if env.intn(2) == 0 {
		target = env.pick(orAll(without(env.Up, l), env.Up))
	}
	role := "a follower"
	if target == l {
		role = "the leader"
	}
	note = strings.TrimSpace(role + ". " + note)
	if err := env.Cluster.RemoveMember(ctx, target); err != nil {
		// Refused (no reachable majority without it, during another
		// fault): nothing changed, so there is nothing to undo.
		return Effect{Targets: []string{target}, Note: fmt.Sprintf("removal refused: %v", err)}, nil
	}
	undo := func(ctx context.Context) string {
		if err := env.Cluster.Rejoin(ctx, target); err != nil {
			return fmt.Sprintf("re-adding %s failed: %v", target, err)
		}
		return waitVoter(ctx, env.Cluster, target)
	}
	return Effect{Targets: []string{target}, Holds: []string{target}, Note: "removed " + target + ". " + note, Undo: undo}, nil
}

// waitVoter polls every node until one leader lists id as a voter.
func waitVoter(ctx context.Context, c Cluster, id string) string {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, st := range statuses(ctx, c, c.NodeIDs()) {
			if st == nil || st.RaftState != "Leader" {
				continue
			}
			for _, n := range st.Nodes {
				if n.Id == id && n.Voter {
					return fmt.Sprintf("re-added %s with --join; a voter again after %.1fs", id, time.Since(start).Seconds())
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Sprintf("re-added %s with --join, but it was not a voter within 60s", id)
		case <-tick.C:
		}
	}
}
