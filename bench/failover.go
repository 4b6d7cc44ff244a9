package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// FailoverSample is one kill -9 of the leader under load.
type FailoverSample struct {
	Sample int    `json:"sample"`
	Killed string `json:"killed"`
	// WriteUnavailableMs: from the kill to the earliest completion of a
	// successful probe write. Probes are fresh requests sent every 10 ms
	// after the kill, so the figure does not depend on how long a request
	// that was lost in the failover waits for its timeout. The headline.
	WriteUnavailableMs float64 `json:"write_unavailable_ms"`
	// ReadUnavailableMs: the same for linearizable reads.
	ReadUnavailableMs float64 `json:"read_unavailable_ms"`
	// LoadWriteRecoveryMs: from the kill to the first success of the
	// steady closed-loop writers for a request sent after the kill; this
	// includes clients stuck until --op-timeout on a lost request.
	LoadWriteRecoveryMs float64 `json:"load_write_recovery_ms"`
	LoadReadRecoveryMs  float64 `json:"load_read_recovery_ms"`
	// WriteGapMs: the longest time between two successful write
	// completions (load and probes) around the kill.
	WriteGapMs float64 `json:"write_gap_ms"`
	// LeaderElectedMs: from the kill to the first time a surviving node
	// reported itself leader (polled every 5 ms).
	LeaderElectedMs float64 `json:"leader_elected_ms"`
	// NewLeader is the node that led once writes worked again.
	NewLeader string `json:"new_leader"`
	// TimedOut: no probe write or read succeeded within failoverLimit.
	TimedOut bool `json:"timed_out,omitempty"`
	Errors   int  `json:"errors"`
}

const (
	failoverSteady = time.Second            // load before the kill
	failoverAfter  = 300 * time.Millisecond // load after recovery
	failoverLimit  = 30 * time.Second       // give up on a sample after this
	probeEvery     = 10 * time.Millisecond  // a write and a read probe each
	maxProbes      = 64                     // probes in flight at most
)

// event is a successful request's start and end.
type event struct{ start, end time.Time }

// failoverLoad is the steady load during a failover sample: half the
// workers write, half read, all through the "all nodes" clients; after
// the kill, probes too.
type failoverLoad struct {
	kill       atomic.Int64 // UnixNano of the kill; 0 before
	loadWrite  atomic.Int64 // UnixNano end of the first ok load write sent after the kill
	loadRead   atomic.Int64
	probeWrite atomic.Int64 // UnixNano end of the earliest ok probe write
	probeRead  atomic.Int64
	errs       atomic.Int64

	mu          sync.Mutex
	writeEvents []event
}

func (l *failoverLoad) addWrite(e event) {
	l.mu.Lock()
	l.writeEvents = append(l.writeEvents, e)
	l.mu.Unlock()
}

// storeMin lowers a to v if a is 0 or larger.
func storeMin(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if cur != 0 && cur <= v {
			return
		}
		if a.CompareAndSwap(cur, v) {
			return
		}
	}
}

func (l *failoverLoad) run(ctx context.Context, wg *sync.WaitGroup, ops func(int) Ops, keys []string, conc int, opTimeout time.Duration) {
	writers := max(1, conc/2)
	readers := max(1, conc-writers)
	rngs := workerRNGs(writers+readers, 3) // uniform keys
	for w := 0; w < writers+readers; w++ {
		wg.Add(1)
		go func(w int, write bool) {
			defer wg.Done()
			o := ops(w)
			for i := uint64(0); ctx.Err() == nil; i++ {
				key := keys[rngs[w].IntN(len(keys))]
				t0 := time.Now()
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				var err error
				if write {
					err = o.Set(octx, key, i)
				} else {
					err = o.Check(octx, key)
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
					l.addWrite(event{t0, t1})
				}
				if k := l.kill.Load(); k != 0 && t0.UnixNano() >= k {
					first := &l.loadRead
					if write {
						first = &l.loadWrite
					}
					first.CompareAndSwap(0, t1.UnixNano())
				}
			}
		}(w, w < writers)
	}
}

// probe sends a fresh write and a fresh read every probeEvery until both
// have succeeded once or ctx ends.
func (l *failoverLoad) probe(ctx context.Context, wg *sync.WaitGroup, ops func(int) Ops, keys []string, opTimeout time.Duration) {
	var inflight atomic.Int64
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for n := 0; ; n++ {
		if l.probeWrite.Load() != 0 && l.probeRead.Load() != 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, write := range []bool{true, false} {
			if inflight.Load() >= maxProbes {
				continue
			}
			inflight.Add(1)
			wg.Add(1)
			go func(o Ops, key string, write bool) {
				defer wg.Done()
				defer inflight.Add(-1)
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				defer cancel()
				t0 := time.Now()
				var err error
				if write {
					err = o.Set(octx, key, uint64(t0.UnixNano()))
				} else {
					err = o.Check(octx, key)
				}
				if err != nil {
					return
				}
				t1 := time.Now()
				if write {
					l.addWrite(event{t0, t1})
					storeMin(&l.probeWrite, t1.UnixNano())
				} else {
					storeMin(&l.probeRead, t1.UnixNano())
				}
			}(ops(n), keys[rand.IntN(len(keys))], write)
		}
	}
}

// failoverSample kills the leader under load and measures how long writes
// and reads are unavailable, then restarts the killed node.
func failoverSample(ctx context.Context, sys System, ops func(int) Ops, keys []string, cfg Config, n int) (FailoverSample, error) {
	s := FailoverSample{Sample: n}
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var load failoverLoad
	var wg sync.WaitGroup
	load.run(lctx, &wg, ops, keys, cfg.FailoverConcurrency, cfg.OpTimeout)
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
	pctx, stopProbes := context.WithTimeout(lctx, failoverLimit)
	var elected atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pctx.Err() == nil {
			c, cancel := context.WithTimeout(pctx, time.Second)
			l := sys.PollLeader(c)
			cancel()
			if l >= 0 && l != leader {
				elected.Store(time.Now().UnixNano())
				return
			}
			sleepCtx(pctx, 5*time.Millisecond)
		}
	}()
	load.probe(pctx, &wg, ops, keys, cfg.OpTimeout)
	s.TimedOut = load.probeWrite.Load() == 0 || load.probeRead.Load() == 0
	stopProbes()
	// Keep the load on until its own clients recover too (a client stuck
	// on a lost request waits for --op-timeout).
	for (load.loadWrite.Load() == 0 || load.loadRead.Load() == 0) && time.Since(kill) < failoverLimit && ctx.Err() == nil {
		sleepCtx(ctx, 5*time.Millisecond)
	}
	sleepCtx(ctx, failoverAfter)
	stopLoad()
	wg.Wait()
	s.WriteUnavailableMs = sinceKillMs(kill, load.probeWrite.Load())
	s.ReadUnavailableMs = sinceKillMs(kill, load.probeRead.Load())
	s.LeaderElectedMs = sinceKillMs(kill, elected.Load())
	s.LoadWriteRecoveryMs = sinceKillMs(kill, load.loadWrite.Load())
	s.LoadReadRecoveryMs = sinceKillMs(kill, load.loadRead.Load())
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
		err := retry(ctx, func(c context.Context) error { return ops(w).Set(c, keys[0], uint64(w)) })
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

func sinceKillMs(kill time.Time, endNano int64) float64 {
	if endNano == 0 {
		return ms(failoverLimit) // a lower bound; see TimedOut
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
