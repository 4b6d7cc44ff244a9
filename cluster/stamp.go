package cluster

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/command"
)

// The leader's clock in the log.
//
// The leader stamps its wall-clock time into every entry it proposes, and
// the state machine uses only that stamp: record and audit times, the end
// of an idempotency window, audit retention. All replicas therefore agree,
// whatever their own clocks say. What the stamp cannot be is more right
// than the leader's clock:
//
//   - A clock that goes back (a new leader whose clock is behind, or a step
//     back) would make times run backwards in the log. The leader never
//     stamps an entry earlier than the latest stamp it issued or applied,
//     so stamps never decrease in log order and "the state at time T" is
//     well defined. Such a clamp is counted (optoutd_stamp_clamped_total)
//     and, past a second, logged.
//   - A clock that jumps forward by D moves every stamp after it forward by
//     D: idempotency keys remembered before the jump expire D early, and a
//     retry that arrives later than (window - D) after its first attempt
//     applies again; audit entries are removed D early. Nothing diverges:
//     every replica expires the same keys at the same entry. There is no
//     way to tell a wrong jump from a correction of a wrong clock, so it is
//     not second-guessed; keep clocks synchronised (NTP) and the window
//     (--idempotency-window, 24 h) far longer than any retry.
//     TestForwardClockJumpExpiresKeysEarlyByTheJump (fsm) measures it.
type stamper struct {
	mu   sync.Mutex
	last int64 // the latest stamp issued (Unix ns)
}

// next returns the stamp for an entry proposed at now: now, or the floor
// when now is behind it. clamped is how far now was behind.
func (s *stamper) next(now time.Time, applied int64) (stamp time.Time, clamped time.Duration) {
	floor := max(s.last, applied)
	ns := now.UnixNano()
	if ns < floor {
		clamped, ns = time.Duration(floor-ns), floor
	}
	s.last = ns
	return time.Unix(0, ns), clamped
}

// applyStamped stamps an encoded command with the leader's time (see
// above) and hands it to Raft. Stamping and enqueueing happen under one
// lock, so stamps follow log order.
func (n *Node) applyStamped(data []byte, timeout time.Duration) (raft.ApplyFuture, error) {
	n.stamps.mu.Lock()
	defer n.stamps.mu.Unlock()
	stamp, behind := n.stamps.next(n.now(), n.fsm.LastStamp())
	if behind > 0 {
		n.metrics.stampClamped.Inc()
		if behind > time.Second {
			n.log.Warn("this leader's clock is behind the latest entry's time; stamping the entry with that time instead",
				"behind", behind.Round(time.Millisecond))
		}
	}
	data, err := command.Restamp(data, stamp)
	if err != nil {
		return nil, fmt.Errorf("cluster: stamp command: %w", err)
	}
	return n.raft.Apply(data, timeout), nil
}

// now is the node's clock (Config.TestingClock in tests).
func (n *Node) now() time.Time {
	if n.cfg.TestingClock != nil {
		return n.cfg.TestingClock()
	}
	return time.Now()
}
