package nemesis

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Planned is one fault of a schedule: which kind, when it starts (after
// the workload starts) and for how long at most it is held.
type Planned struct {
	Kind string        `json:"kind"`
	At   time.Duration `json:"at_ns"`
	For  time.Duration `json:"for_ns"`
}

// End is when the fault is healed at the latest.
func (p Planned) End() time.Duration { return p.At + p.For }

// ScheduleConfig shapes a schedule.
type ScheduleConfig struct {
	Kinds []string
	// Total is the length of the workload; every fault ends by
	// Total-Recovery, so the cluster runs healed under load at the end.
	Total    time.Duration
	Recovery time.Duration
	// Lead is the fault-free time at the start.
	Lead time.Duration
	// Gap bounds the healed time between two faults (sequential mode).
	GapMin, GapMax time.Duration
	// Overlap lets a fault start while earlier ones are still active.
	Overlap bool
	Seed    uint64
}

// DefaultSchedule returns the CI shape: one fault at a time.
func DefaultSchedule(kinds []string, total time.Duration, seed uint64) ScheduleConfig {
	return ScheduleConfig{Kinds: kinds, Total: total, Recovery: 3 * time.Second, Lead: 2 * time.Second,
		GapMin: 2 * time.Second, GapMax: 4 * time.Second, Seed: seed}
}

// ErrTooShort says the time given cannot hold one fault.
var ErrTooShort = errors.New("nemesis: time too short for one fault")

func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
}

// Plan builds a schedule. Kinds take turns in the order given (in a seeded
// random order when overlapping), so every kind appears once there is room.
// Sequential schedules never overlap; every fault of every schedule ends by
// Total-Recovery.
func Plan(cfg ScheduleConfig) ([]Planned, error) {
	if len(cfg.Kinds) == 0 {
		return nil, errors.New("nemesis: no fault kinds")
	}
	ks := make([]Kind, len(cfg.Kinds))
	for i, name := range cfg.Kinds {
		k, err := Lookup(name)
		if err != nil {
			return nil, err
		}
		ks[i] = k
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x6a657073656e))
	if cfg.Overlap {
		r.Shuffle(len(ks), func(i, j int) { ks[i], ks[j] = ks[j], ks[i] })
	}
	deadline := cfg.Total - cfg.Recovery
	var plan []Planned
	t := cfg.Lead
	for i := 0; ; i++ {
		k := ks[i%len(ks)]
		d := between(r, k.Min, k.Max)
		if rest := deadline - t; d > rest {
			if rest < k.Min {
				break
			}
			d = rest
		}
		plan = append(plan, Planned{Kind: k.Name, At: t, For: d})
		if cfg.Overlap {
			// The next fault starts while this one is held (30–90% in).
			t += time.Duration(float64(d) * (0.3 + 0.6*r.Float64()))
		} else {
			t += d + between(r, cfg.GapMin, cfg.GapMax)
		}
	}
	if len(plan) == 0 {
		need := cfg.Lead + ks[0].Min + cfg.Recovery
		return nil, fmt.Errorf("%w: %s needs at least %v (lead %v + fault %v + recovery %v), got %v",
			ErrTooShort, ks[0].Name, need, cfg.Lead, ks[0].Min, cfg.Recovery, cfg.Total)
	}
	return plan, nil
}
