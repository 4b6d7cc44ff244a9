package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/jepsen/db"
)

// Cluster is what the nemesis needs from a running cluster.
type Cluster interface {
	NodeIDs() []string
	Kill(ctx context.Context, id string) error
	Start(ctx context.Context, id string) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	SetDrops(ctx context.Context, drops []db.Drop) error
	// Status asks one node (it must answer within ctx).
	Status(ctx context.Context, id string) (*optoutv1.StatusResponse, error)
	// RemoveMember removes a node from the Raft configuration.
	RemoveMember(ctx context.Context, id string) error
	// Rejoin wipes a removed node and starts it so that it asks to be
	// added back.
	Rejoin(ctx context.Context, id string) error
	// RaftAddr is the host:port of a node's Raft port, as the harness
	// reaches it.
	RaftAddr(id string) string
}

// Effect is what an active fault holds the cluster to. Several active
// faults combine: a node is down if any holds it down, paused if any holds
// it paused, and the partition is the union of their drops.
type Effect struct {
	Targets []string
	Drops   []db.Drop
	Down    []string
	Paused  []string
	Note    string
	// Until, if set, ends the fault early: it is polled while the fault is
	// active and the fault heals once it returns true.
	Until func(ctx context.Context) (bool, string)
	// Holds lists nodes this fault owns although they keep running: no
	// other fault picks them as a target while it is active.
	Holds []string
	// Undo, if set, runs when the fault's time is up, while it still holds
	// its nodes, and may add to the note (membership re-adds its node).
	Undo func(ctx context.Context) string
	// After, if set, runs once the fault is healed and may add to the note.
	After func(ctx context.Context) string
	// Findings, if set, is asked after Undo for what the fault itself
	// caught the cluster doing wrong (a bad request it accepted); each one
	// is an anomaly of the run.
	Findings func() []string
}

// Env is what a fault kind sees when it begins.
type Env struct {
	Cluster Cluster
	// Up lists the nodes neither killed nor paused by another fault.
	Up  []string
	rng *rand.Rand
	mu  *sync.Mutex
}

func (e *Env) intn(n int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rng.IntN(n)
}

func (e *Env) shuffled(ids []string) []string {
	out := slices.Clone(ids)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (e *Env) pick(ids []string) string { return ids[e.intn(len(ids))] }

// Kind is one named fault.
type Kind struct {
	Name    string
	Summary string
	// Min and Max bound how long one fault of this kind is held.
	Min, Max time.Duration
	// Exclusive kinds run one fault at a time; an overlapping one is
	// skipped.
	Exclusive bool
	Begin     func(ctx context.Context, env *Env) (Effect, error)
}

// ErrNotYet marks a fault kind that is planned but not implemented.
var ErrNotYet = errors.New("nemesis: not available yet")

// kinds is the registry. To add a fault, add a Kind here and document it
// in jepsen/README.md.
var kinds = map[string]Kind{
	"partition-leader": {Name: "partition-leader", Min: 3 * time.Second, Max: 6 * time.Second,
		Summary: "isolate the current leader from every other node", Begin: beginPartitionLeader},
	"partition-follower": {Name: "partition-follower", Min: 3 * time.Second, Max: 6 * time.Second,
		Summary: "isolate one follower", Begin: beginPartitionFollower},
	"partition-majority": {Name: "partition-majority", Min: 3 * time.Second, Max: 6 * time.Second,
		Summary: "split into a majority and a minority (the leader lands on either side)", Begin: beginPartitionMajority},
	"partition-bridge": {Name: "partition-bridge", Min: 3 * time.Second, Max: 6 * time.Second,
		Summary: "two halves that cannot talk, both connected to one bridge node", Begin: beginPartitionBridge},
	"partition-oneway": {Name: "partition-oneway", Min: 3 * time.Second, Max: 6 * time.Second,
		Summary: "drop one direction only: the leader cannot hear the others, or they cannot hear it", Begin: beginPartitionOneway},
	"kill": {Name: "kill", Min: 2 * time.Second, Max: 5 * time.Second,
		Summary: "kill -9 the leader or a random node, then restart it", Begin: beginKill},
	"kill-all": {Name: "kill-all", Min: 1 * time.Second, Max: 3 * time.Second,
		Summary: "kill -9 every node, then restart them all", Begin: beginKillAll},
	"membership": {Name: "membership", Min: 3 * time.Second, Max: 6 * time.Second, Exclusive: true,
		Summary: "remove the leader or a follower from the configuration, then wipe it and add it back with --join", Begin: beginMembership},
	"pause": {Name: "pause", Min: 2 * time.Second, Max: 4 * time.Second,
		Summary: "SIGSTOP the leader for longer than the election timeout, then SIGCONT", Begin: beginPause},
	"bad-peer-requests": {Name: "bad-peer-requests", Min: 3 * time.Second, Max: 6 * time.Second,
		Summary: "send the leader's Raft port commands that decode but must not apply, undecodable and oversized bodies, callers that are no member, forged removal notices and junk bytes", Begin: beginBadPeerRequests},
	"lagging-follower": {Name: "lagging-follower", Min: 4 * time.Second, Max: 10 * time.Second,
		Summary: "isolate a follower until the leader has snapshotted and truncated its log past the follower's last index, then heal (forces InstallSnapshot)", Begin: beginLaggingFollower},
}

// planned kinds that have a name but no implementation yet.
var planned = map[string]string{
	"clock-skew": "nodes share the host's clock in both backends (see README, Extending)",
}

// Names lists every available kind, sorted.
func Names() []string {
	out := make([]string, 0, len(kinds))
	for n := range kinds {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup returns a kind by name, with an error that lists the valid names.
func Lookup(name string) (Kind, error) {
	if k, ok := kinds[name]; ok {
		return k, nil
	}
	if why, ok := planned[name]; ok {
		return Kind{}, fmt.Errorf("%w: %q (%s)", ErrNotYet, name, why)
	}
	return Kind{}, fmt.Errorf("nemesis: unknown %q (choose from %s)", name, strings.Join(Names(), ", "))
}

// Isolate cuts x off from every other node, both ways.
func Isolate(x string, all []string) []db.Drop {
	var d []db.Drop
	for _, y := range all {
		if y != x {
			d = append(d, db.Drop{From: x, To: y}, db.Drop{From: y, To: x})
		}
	}
	return d
}

// Split cuts every link between a and b, both ways.
func Split(a, b []string) []db.Drop {
	var d []db.Drop
	for _, x := range a {
		for _, y := range b {
			d = append(d, db.Drop{From: x, To: y}, db.Drop{From: y, To: x})
		}
	}
	return d
}

// Bridge splits order into two halves that share its middle node: the
// halves cannot talk, the middle node talks to both.
func Bridge(order []string) (drops []db.Drop, bridge string) {
	mid := (len(order) - 1) / 2
	return Split(order[:mid], order[mid+1:]), order[mid]
}

// OneWay drops packets from every node of from to to.
func OneWay(from []string, to string) []db.Drop {
	var d []db.Drop
	for _, x := range from {
		if x != to {
			d = append(d, db.Drop{From: x, To: to})
		}
	}
	return d
}

func without(ids []string, x string) []string {
	var out []string
	for _, id := range ids {
		if id != x {
			out = append(out, id)
		}
	}
	return out
}

// leaderOr finds the leader among the up nodes, or picks one at random and
// says so in the note.
func leaderOr(ctx context.Context, env *Env) (string, string) {
	l, err := FindLeader(ctx, env.Cluster, env.Up)
	if err != nil || l == "" {
		return env.pick(env.Up), "no leader found; picked a node at random"
	}
	return l, ""
}

func beginPartitionLeader(ctx context.Context, env *Env) (Effect, error) {
	l, note := leaderOr(ctx, env)
	return Effect{Targets: []string{l}, Drops: Isolate(l, env.Cluster.NodeIDs()), Note: note}, nil
}

func beginPartitionFollower(ctx context.Context, env *Env) (Effect, error) {
	l, note := leaderOr(ctx, env)
	f := env.pick(orAll(without(env.Up, l), env.Up))
	return Effect{Targets: []string{f}, Drops: Isolate(f, env.Cluster.NodeIDs()), Note: note}, nil
}

func orAll(ids, all []string) []string {
	if len(ids) == 0 {
		return all
	}
	return ids
}

func beginPartitionMajority(ctx context.Context, env *Env) (Effect, error) {
	all := env.Cluster.NodeIDs()
	l, note := leaderOr(ctx, env)
	rest := env.shuffled(without(all, l))
	nMinor := (len(all) - 1) / 2
	var minority, majority []string
	if env.intn(2) == 0 { // leader in the minority: it must stop serving
		minority = append([]string{l}, rest[:nMinor-1]...)
		majority = rest[nMinor-1:]
	} else {
		minority = rest[:nMinor]
		majority = append([]string{l}, rest[nMinor:]...)
	}
	sort.Strings(minority)
	sort.Strings(majority)
	return Effect{Targets: minority, Drops: Split(minority, majority),
		Note: strings.TrimSpace(fmt.Sprintf("minority %v, majority %v, leader %s. %s", minority, majority, l, note))}, nil
}

func beginPartitionBridge(_ context.Context, env *Env) (Effect, error) {
	order := env.shuffled(env.Cluster.NodeIDs())
	drops, bridge := Bridge(order)
	mid := (len(order) - 1) / 2
	return Effect{Targets: []string{bridge}, Drops: drops,
		Note: fmt.Sprintf("halves %v and %v share %s", order[:mid+1], order[mid:], bridge)}, nil
}

func beginPartitionOneway(ctx context.Context, env *Env) (Effect, error) {
	all := env.Cluster.NodeIDs()
	l, note := leaderOr(ctx, env)
	if env.intn(2) == 0 {
		return Effect{Targets: []string{l}, Drops: OneWay(all, l), Note: strings.TrimSpace("leader " + l + " cannot hear the others. " + note)}, nil
	}
	var drops []db.Drop
	for _, y := range without(all, l) {
		drops = append(drops, db.Drop{From: l, To: y})
	}
	return Effect{Targets: []string{l}, Drops: drops, Note: strings.TrimSpace("the others cannot hear leader " + l + ". " + note)}, nil
}

func beginKill(ctx context.Context, env *Env) (Effect, error) {
	if env.intn(2) == 0 {
		l, note := leaderOr(ctx, env)
		return Effect{Targets: []string{l}, Down: []string{l}, Note: strings.TrimSpace("leader. " + note)}, nil
	}
	n := env.pick(env.Up)
	return Effect{Targets: []string{n}, Down: []string{n}, Note: "random node"}, nil
}

func beginKillAll(_ context.Context, env *Env) (Effect, error) {
	all := env.Cluster.NodeIDs()
	return Effect{Targets: all, Down: all}, nil
}

func beginPause(ctx context.Context, env *Env) (Effect, error) {
	l, note := leaderOr(ctx, env)
	return Effect{Targets: []string{l}, Paused: []string{l}, Note: note}, nil
}
