package main

import (
	"sync"
	"time"

	gometrics "github.com/armon/go-metrics"
	gmprom "github.com/armon/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

var bridgeOnce sync.Once

// bridgeRaftMetrics sends hashicorp/raft's own metrics (commit time, apply
// and replication timings, snapshot phases; emitted through go-metrics)
// to reg as optoutd_raft_* series. go-metrics is process-global, so this
// is done once, for `optoutd server` (one node per process).
func bridgeRaftMetrics(reg prometheus.Registerer) error {
	var err error
	bridgeOnce.Do(func() {
		var sink *gmprom.PrometheusSink
		sink, err = gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Registerer: reg, Expiration: 5 * time.Minute})
		if err != nil {
			return
		}
		cfg := gometrics.DefaultConfig("optoutd")
		cfg.EnableHostname = false
		cfg.EnableRuntimeMetrics = false // the Go collector covers these
		cfg.EnableServiceLabel = false
		_, err = gometrics.NewGlobal(cfg, sink)
	})
	return err
}
