package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// FailoverSample is one kill -9 of the leader under load.
type FailoverSample struct {
	Sample int    `json:"sample"`
	Killed string `json:"killed"`
	// WriteUnavailableMs: from the kill to the end of the first successful
	// write that was sent after the kill. The headline number.
	WriteUnavailableMs float64 `json:"write_unavailable_ms"`
	// ReadUnavailableMs: the same for linearizable reads.
	ReadUnavailableMs float64 `json:"read_unavailable_ms"`
	// WriteGapMs: the longest time between two successful write
	// completions around the kill (any start time).
	WriteGapMs float64 `json:"write_gap_ms"`
	// NewLeader is the node that led once writes worked again.
	NewLeader string `json:"new_leader"`
	// TimedOut: no write or no read succeeded within failoverLimit.
	TimedOut bool `json:"timed_out,omitempty"`
	Errors   int  `json:"errors"`
}

const (
	failoverSteady = time.Second            // load before the kill
	failoverAfter  = 300 * time.Millisecond // load after recovery
	failoverLimit  = 30 * time.Second       // give up on a sample after this
)

// event is a successful request's start and end.
type event struct{ start, end time.Time }

// failoverLoad is the steady load during a failover sample: half the
// workers write, half read, all through the "all nodes" clients.
type failoverLoad struct {
	kill        atomic.Int64 // UnixNano of the kill; 0 before
	firstWrite  atomic.Int64 // UnixNano end of first ok write started after kill
	firstRead   atomic.Int64
	errs        atomic.Int64
	mu          sync.Mutex
	writeEvents []event
}

func (l *failoverLoad) run(ctx context.Context, ops func(int) Ops, keys []string, conc int, opTimeout time.Duration) *sync.WaitGroup {
	writers := max(1, conc/2)
	readers := max(1, conc-writers)
	rngs := workerRNGs(writers+readers, 3)
	var wg sync.WaitGroup
	for w := 0; w < writers+readers; w++ {
		wg.Add(1)
		go func(w int, write bool) {
			defer wg.Done()
			o := ops(w)
			var evs []event
			defer func() {
				l.mu.Lock()
				l.writeEvents = append(l.writeEvents, evs...)
				l.mu.Unlock()
			}()
			for i := uint64(0); ctx.Err() == nil; i++ {
				key := keys[rngs[w].IntN(len(keys))]
				t0 := time.Now()
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				var err error
				if write {
					err = o.Write(octx, key, i)
				} else {
					err = o.Read(octx, key)
				}
				cancel()
				t1 := time.Now()
				if err != nil {
					if ctx.Err() == nil {
						l.errs.Add(1)
					}
					sleepCtx(ctx, errorPause)
					continue
				}
				if write {
					evs = append(evs, event{t0, t1})
				}
				if k := l.kill.Load(); k != 0 && t0.UnixNano() >= k {
					first := &l.firstRead
					if write {
						first = &l.firstWrite
					}
					first.CompareAndSwap(0, t1.UnixNano())
				}
			}
		}(w, w < writers)
	}
	return &wg
}

// failoverSample kills the leader under load and measures how long writes
// and reads are unavailable, then restarts the killed node.
func failoverSample(ctx context.Context, sys System, ops func(int) Ops, keys []string, cfg Config, n int) (FailoverSample, error) {
	s := FailoverSample{Sample: n}
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var load failoverLoad
	wg := load.run(lctx, ops, keys, cfg.Concurrency, cfg.OpTimeout)
	sleepCtx(ctx, failoverSteady)
	leader, err := sys.Leader(ctx)
	if err != nil {
		stopLoad()
		wg.Wait()
		return s, err
	}
	s.Killed = sys.NodeName(leader)
	kill := time.Now()
	load.kill.Store(kill.UnixNano())
	sys.Kill(leader)
	deadline := time.Now().Add(failoverLimit)
	for load.firstWrite.Load() == 0 || load.firstRead.Load() == 0 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.TimedOut = true
			break
		}
		sleepCtx(ctx, time.Millisecond)
	}
	sleepCtx(ctx, failoverAfter)
	stopLoad()
	wg.Wait()
	s.WriteUnavailableMs = sinceKillMs(kill, load.firstWrite.Load())
	s.ReadUnavailableMs = sinceKillMs(kill, load.firstRead.Load())
	s.WriteGapMs = ms(longestGap(load.writeEvents, kill.Add(-failoverSteady/2)))
	s.Errors = int(load.errs.Load())
	if ctx.Err() != nil {
		return s, ctx.Err()
	}
	if nl, err := sys.Leader(ctx); err == nil {
		s.NewLeader = sys.NodeName(nl)
	}
	if err := sys.Restart(ctx, leader); err != nil {
		return s, fmt.Errorf("restart %s: %w", s.Killed, err)
	}
	// Let the restarted node catch up before the next sample: one write
	// through every client start must succeed.
	for w := 0; w < 3; w++ {
		err := retry(ctx, func(c context.Context) error { return ops(w).Write(c, keys[0], uint64(w)) })
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

func sinceKillMs(kill time.Time, endNano int64) float64 {
	if endNano == 0 {
		return ms(failoverLimit) // a lower bound; the sample is marked TimedOut
	}
	return ms(time.Unix(0, endNano).Sub(kill))
}

// longestGap is the longest time between successive write completions
// that end after from.
func longestGap(evs []event, from time.Time) time.Duration {
	var ends []time.Time
	for _, e := range evs {
		if e.end.After(from) {
			ends = append(ends, e.end)
		}
	}
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(ends); i++ {
		gap = max(gap, ends[i].Sub(ends[i-1]))
	}
	return gap
}
