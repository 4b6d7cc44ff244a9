package cluster

import "github.com/prometheus/client_golang/prometheus"

// metrics are per node, so several nodes in one process (optoutd dev, tests)
// keep separate counts. They are registered only when Config.Metrics is set.
type metrics struct {
	readRounds prometheus.Counter
	readBatch  prometheus.Histogram
	proposals  *prometheus.CounterVec
	forwarded  prometheus.Counter
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
	}
	if reg != nil {
		reg.MustRegister(m.readRounds, m.readBatch, m.proposals, m.forwarded)
	}
	return m
}
