package api

import (
	"time"

	"github.com/optoutd/optoutd"
	"github.com/prometheus/client_golang/prometheus"
)

// overrideCollector reports enforcement state at scrape time from this
// node's replicated state: active overrides by effect, how many ran to
// their expiry without being revoked (forgotten bypasses), and each
// reporting service's counts and violation score over 24 h. Every node
// reports the same numbers once caught up.
type overrideCollector struct {
	store      Store
	active     *prometheus.Desc
	expired    *prometheus.Desc
	score      *prometheus.Desc
	reports    *prometheus.Desc
	violations *prometheus.Desc
}

func newOverrideCollector(st Store) *overrideCollector {
	return &overrideCollector{
		store: st,
		active: prometheus.NewDesc("optoutd_overrides_active",
			"Overrides active in this node's state, by effect (allow: opt-outs bypassed; deny: kill switches).", []string{"effect"}, nil),
		expired: prometheus.NewDesc("optoutd_overrides_expired_total",
			"Overrides that ran to their expiry instead of being revoked: forgotten bypasses.", nil, nil),
		score: prometheus.NewDesc("optoutd_service_violation_score",
			"Violations per 10,000 processing reports over the last 24 h, by reporting service.", []string{"service"}, nil),
		reports: prometheus.NewDesc("optoutd_service_reports_24h",
			"Processing reports over the last 24 h, by reporting service.", []string{"service"}, nil),
		violations: prometheus.NewDesc("optoutd_service_violations_24h",
			"Violations found in processing reports over the last 24 h, by reporting service.", []string{"service"}, nil),
	}
}

func (c *overrideCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.active, c.expired, c.score, c.reports, c.violations} {
		ch <- d
	}
}

func (c *overrideCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[optoutd.OverrideEffect]float64{optoutd.OverrideAllow: 0, optoutd.OverrideDeny: 0}
	var expired uint64
	var scores []optoutd.ServiceScore
	now := time.Now()
	err := c.store.ReadLocal(func(v optoutd.View) error {
		var err error
		if scores, err = v.ServiceScores("", now.Add(-optoutd.DefaultScoreWindow+time.Hour), now); err != nil {
			return err
		}
		st, err := v.Settings()
		if err != nil {
			return err
		}
		expired = st.OverridesExpired
		list, err := v.ListOverrides(false, "", optoutd.MaxHistoryPage)
		for _, o := range list {
			counts[o.Effect]++
		}
		return err
	})
	if err != nil {
		// An unreadable state (a halted or closing node) leaves these series
		// out rather than failing the whole scrape; readiness reports it.
		return
	}
	for e, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, n, e.String())
	}
	ch <- prometheus.MustNewConstMetric(c.expired, prometheus.CounterValue, float64(expired))
	for _, sc := range scores {
		ch <- prometheus.MustNewConstMetric(c.score, prometheus.GaugeValue, sc.Per10k(), sc.Service)
		ch <- prometheus.MustNewConstMetric(c.reports, prometheus.GaugeValue, float64(sc.Reports), sc.Service)
		ch <- prometheus.MustNewConstMetric(c.violations, prometheus.GaugeValue, float64(sc.Violations), sc.Service)
	}
}
