package api

import (
	"github.com/optoutd/optoutd"
	"github.com/prometheus/client_golang/prometheus"
)

// overrideCollector reports the overrides in this node's state at scrape
// time: the active ones by effect, and how many ran to their expiry
// without being revoked (forgotten bypasses). Both come from replicated
// state, so every node reports the same numbers once caught up.
type overrideCollector struct {
	store   Store
	active  *prometheus.Desc
	expired *prometheus.Desc
}

func newOverrideCollector(st Store) *overrideCollector {
	return &overrideCollector{
		store: st,
		active: prometheus.NewDesc("optoutd_overrides_active",
			"Overrides active in this node's state, by effect (allow: opt-outs bypassed; deny: kill switches).", []string{"effect"}, nil),
		expired: prometheus.NewDesc("optoutd_overrides_expired_total",
			"Overrides that ran to their expiry instead of being revoked: forgotten bypasses.", nil, nil),
	}
}

func (c *overrideCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.active; ch <- c.expired }

func (c *overrideCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[optoutd.OverrideEffect]float64{optoutd.OverrideAllow: 0, optoutd.OverrideDeny: 0}
	var expired uint64
	err := c.store.ReadLocal(func(v optoutd.View) error {
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
		ch <- prometheus.NewInvalidMetric(c.active, err)
		return
	}
	for e, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, n, e.String())
	}
	ch <- prometheus.MustNewConstMetric(c.expired, prometheus.CounterValue, float64(expired))
}
