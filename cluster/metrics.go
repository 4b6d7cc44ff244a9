package cluster

import "github.com/prometheus/client_golang/prometheus"

// metrics are per node, so several nodes in one process (optoutd dev, tests)
// keep separate counts. They are registered only when Config.Metrics is set.
type metrics struct {
	readRounds prometheus.Counter
	readBatch  prometheus.Histogram
	proposals  *prometheus.CounterVec
	forwarded  prometheus.Counter
	// stampClamped counts entries stamped later than the leader's clock
	// said, because an earlier entry carried a later time.
	stampClamped prometheus.Counter

	applySeconds   prometheus.Histogram
	applyEntries   prometheus.Counter
	persistSeconds prometheus.Histogram
	restoreSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		readRounds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "optoutd_read_index_rounds_total",
			Help: "Read-index rounds (one quorum heartbeat or one RPC to the leader each).",
		}),
		readBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "optoutd_read_index_batch_size",
			Help:    "Reads served by one read-index round.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		proposals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "optoutd_proposals_total",
			Help: "Write proposals by outcome: ok, rejected (a rule said no), not_applied, unknown.",
		}, []string{"outcome"}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "optoutd_proposals_forwarded_total",
			Help: "Writes this node forwarded to the leader.",
		}),
		stampClamped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "optoutd_stamp_clamped_total",
			Help: "Entries this leader stamped with an earlier entry's later time because its own clock was behind it.",
		}),
	}
	m.applySeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "optoutd_fsm_apply_batch_seconds",
		Help:    "Time to apply one batch of committed entries (one bbolt transaction, fsynced).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})
	m.applyEntries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "optoutd_fsm_applied_entries_total",
		Help: "Log entries handed to the state machine.",
	})
	m.persistSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "optoutd_snapshot_persist_seconds",
		Help:    "Time to stream a Raft snapshot of the state to disk.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
	})
	m.restoreSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "optoutd_snapshot_restore_seconds",
		Help:    "Time to restore the state from a snapshot (InstallSnapshot from the leader).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
	})
	if reg != nil {
		reg.MustRegister(m.readRounds, m.readBatch, m.proposals, m.forwarded, m.stampClamped,
			m.applySeconds, m.applyEntries, m.persistSeconds, m.restoreSeconds)
	}
	return m
}
