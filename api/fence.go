package api

import (
	"slices"
	"strings"
	"sync"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/prometheus/client_golang/prometheus"
)

// maxFenceServices bounds the services ShouldProcess counts separately;
// later ones are counted as "_other", so a caller cannot grow the metric
// without limit.
const maxFenceServices = 1000

type fenceKey struct {
	service, purpose string
	verdict          optoutv1.Verdict
	reason           optoutv1.DiscardReason
}

// fenceCounts are this node's ShouldProcess verdicts since it started.
type fenceCounts struct {
	mu       sync.Mutex
	started  time.Time
	counts   map[fenceKey]uint64
	services map[string]bool
	metric   *prometheus.CounterVec
}

func newFenceCounts(reg prometheus.Registerer) *fenceCounts {
	f := &fenceCounts{
		started: time.Now(), counts: map[fenceKey]uint64{}, services: map[string]bool{},
		metric: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "optoutd_fence_verdicts_total",
			Help: "ShouldProcess answers on this node, by consuming service, purpose (empty for an invalid receipt), verdict and discard reason.",
		}, []string{"service", "purpose", "verdict", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(f.metric)
	}
	return f
}

func label(e interface{ String() string }, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(e.String(), prefix))
}

func (f *fenceCounts) count(service, purpose string, v optoutv1.Verdict, r optoutv1.DiscardReason) {
	f.mu.Lock()
	if !f.services[service] {
		if len(f.services) >= maxFenceServices {
			service = "_other"
		}
		f.services[service] = true
	}
	f.counts[fenceKey{service, purpose, v, r}]++
	f.mu.Unlock()
	f.metric.WithLabelValues(service, purpose, label(v, "VERDICT_"), label(r, "DISCARD_REASON_")).Inc()
}

func (f *fenceCounts) snapshot() ([]*optoutv1.FenceCount, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*optoutv1.FenceCount, 0, len(f.counts))
	for k, n := range f.counts {
		out = append(out, &optoutv1.FenceCount{Service: k.service, Purpose: k.purpose, Verdict: k.verdict, Reason: k.reason, Count: n})
	}
	slices.SortFunc(out, func(a, b *optoutv1.FenceCount) int {
		return strings.Compare(a.Service+"\x00"+a.Purpose+"\x00"+a.Verdict.String()+a.Reason.String(),
			b.Service+"\x00"+b.Purpose+"\x00"+b.Verdict.String()+b.Reason.String())
	})
	return out, time.Since(f.started)
}
