package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
)

// optoutdEnforce is one cluster's enforcement state, shared by its
// clients: the receipts obtained before the first cell that needs them,
// and one cache per client (a client stands for one service process).
type optoutdEnforce struct {
	receipts atomic.Pointer[map[string]issued] // by subject; set once

	mu     sync.Mutex // Prepare and the caches
	caches map[*client.Client]*client.Cache
}

// issued is a receipt and the read index it was issued at.
type issued struct {
	receipt string
	index   uint64
}

// Preparation limits: a whole step (all receipts, or warming one
// cache), the attempts at each request, and the lookups warming a cache
// at once.
const (
	prepareTimeout  = 10 * time.Minute
	prepareAttempts = 10
	warmWorkers     = 32
)

// tryN calls fn until it succeeds, at most n times, 100 ms apart, each
// call with its own timeout. An errNotAllowed answer is not retried.
func tryN(ctx context.Context, n int, timeout time.Duration, fn func(context.Context) error) error {
	var err error
	for a := 0; a < n && ctx.Err() == nil; a++ {
		if a > 0 {
			sleepCtx(ctx, 100*time.Millisecond)
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		err = fn(actx)
		cancel()
		if err == nil || errors.Is(err, errNotAllowed) {
			return err
		}
	}
	return errors.Join(ctx.Err(), err)
}

func (o optoutdOps) Prepare(ctx context.Context, wl string, subjects []string) error {
	ctx, cancel := context.WithTimeout(ctx, prepareTimeout)
	defer cancel()
	o.enf.mu.Lock()
	defer o.enf.mu.Unlock()
	switch wl {
	case wlGateReceipt, wlFence, wlReport, wlReportBatch:
		// gate-receipt needs none, but the cluster's first receipt creates
		// its signing key (a write): that happens here, not in a cell.
		return o.enf.obtainReceipts(ctx, o.c, subjects)
	case wlCache:
		return o.enf.warmCache(ctx, o.c, subjects)
	}
	return nil
}

// obtainReceipts gets an allow receipt for every subject, in batches of
// client's maximum (GateBatch), once per cluster.
func (e *optoutdEnforce) obtainReceipts(ctx context.Context, c *client.Client, subjects []string) error {
	if e.receipts.Load() != nil {
		return nil
	}
	out := make(map[string]issued, len(subjects))
	for start := 0; start < len(subjects); start += maxBatch {
		part := subjects[start:min(start+maxBatch, len(subjects))]
		checks := make([]client.GateCheck, len(part))
		for i, s := range part {
			checks[i] = client.GateCheck{Subject: s, Purpose: enforcePurpose}
		}
		var ds []client.Decision
		err := tryN(ctx, prepareAttempts, 30*time.Second, func(ctx context.Context) (err error) {
			ds, err = c.GateBatch(ctx, checks, client.WithReceipt())
			return err
		})
		if err != nil {
			return fmt.Errorf("receipts for %s: %w", enforcePurpose, err)
		}
		for i, d := range ds {
			if !d.Allow || d.Check.GetReceipt() == "" {
				return fmt.Errorf("receipt for %s/%s: allow %v, receipt %q: %w", part[i], enforcePurpose, d.Allow, d.Check.GetReceipt(), errNotAllowed)
			}
			out[part[i]] = issued{receipt: d.Check.Receipt, index: d.Check.ReadIndex}
		}
	}
	e.receipts.Store(&out)
	return nil
}

// warmCache starts c's cache, if it has none, and looks every subject up
// once through it, so that the cells find every answer in memory.
func (e *optoutdEnforce) warmCache(ctx context.Context, c *client.Client, subjects []string) error {
	if e.caches[c] != nil {
		return nil
	}
	cache, err := client.NewCache(ctx, c, client.CacheOptions{MaxSubjects: max(len(subjects), client.DefaultCacheSubjects)})
	if err != nil {
		return err
	}
	if e.caches == nil {
		e.caches = map[*client.Client]*client.Cache{}
	}
	e.caches[c] = cache
	var next atomic.Int64
	errc := make(chan error, warmWorkers)
	var wg sync.WaitGroup
	for range warmWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := next.Add(1) - 1; k < int64(len(subjects)); k = next.Add(1) - 1 {
				err := tryN(ctx, prepareAttempts, 5*time.Second, func(ctx context.Context) error {
					return allowed(cache.Gate(ctx, subjects[k], enforcePurpose))
				})
				if err != nil {
					errc <- fmt.Errorf("warming the cache with %s: %w", subjects[k], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	if st := cache.Stats(); st.Subjects != len(subjects) {
		return fmt.Errorf("bench: the warmed cache holds %d subjects of %d (stats %+v)", st.Subjects, len(subjects), st)
	}
	return nil
}

// CloseCaches stops every cache's watch stream, so that later cells do
// not pay for streaming their writes to caches nobody asks.
func (s *optoutdSystem) CloseCaches() {
	s.mu.Lock()
	e := s.enf
	s.mu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for c, cache := range e.caches {
		cache.Close()
		delete(e.caches, c)
	}
}

// allowed turns a decision that is not an allow into errNotAllowed.
func allowed(d client.Decision, err error) error {
	if err != nil {
		return err
	}
	if !d.Allow {
		return fmt.Errorf("%w: decision %v, basis %v", errNotAllowed, d.Check.GetDecision(), d.Check.GetBasis())
	}
	return nil
}

func (o optoutdOps) Gate(ctx context.Context, subject string) error {
	return allowed(o.c.Gate(ctx, subject, enforcePurpose))
}

func (o optoutdOps) GateReceipt(ctx context.Context, subject string) error {
	d, err := o.c.Gate(ctx, subject, enforcePurpose, client.WithReceipt())
	if err := allowed(d, err); err != nil {
		return err
	}
	if d.Check.Receipt == "" {
		return errors.New("bench: Gate with a receipt answered none")
	}
	return nil
}

func (o optoutdOps) CachedGate(ctx context.Context, subject string) error {
	o.enf.mu.Lock()
	cache := o.enf.caches[o.c]
	o.enf.mu.Unlock()
	if cache == nil {
		return errors.New("bench: no cache for this client (closed, or not prepared)")
	}
	return allowed(cache.Gate(ctx, subject, enforcePurpose))
}

// receiptOf is subject's receipt from Prepare.
func (o optoutdOps) receiptOf(subject string) (issued, error) {
	m := o.enf.receipts.Load()
	if m == nil {
		return issued{}, errors.New("bench: no receipts (not prepared)")
	}
	r, ok := (*m)[subject]
	if !ok {
		return issued{}, fmt.Errorf("bench: no receipt for %s", subject)
	}
	return r, nil
}

func (o optoutdOps) Fence(ctx context.Context, subject string) error {
	r, err := o.receiptOf(subject)
	if err != nil {
		return err
	}
	resp, err := o.c.ShouldProcess(ctx, reportService, r.receipt, subject)
	if err != nil {
		return err
	}
	if resp.Verdict != optoutv1.Verdict_VERDICT_PROCESS {
		return fmt.Errorf("%w: verdict %v, reason %v", errNotAllowed, resp.Verdict, resp.Reason)
	}
	return nil
}

// Report: each event processed at its receipt's read index, the receipt
// attached: a clean report.
func (o optoutdOps) Report(ctx context.Context, subjects []string) error {
	reports := make([]*optoutv1.ProcessingReport, len(subjects))
	for i, s := range subjects {
		r, err := o.receiptOf(s)
		if err != nil {
			return err
		}
		reports[i] = &optoutv1.ProcessingReport{SubjectId: s, Purpose: enforcePurpose, ProcessedVersion: r.index, Receipt: r.receipt}
	}
	resp, err := o.c.ReportProcessing(ctx, reportService, reports)
	if err != nil {
		return err
	}
	if len(resp.Verdicts) != len(reports) {
		return fmt.Errorf("bench: %d reports answered %d verdicts", len(reports), len(resp.Verdicts))
	}
	for i, v := range resp.Verdicts {
		if v.Kind != optoutv1.ViolationKind_VIOLATION_KIND_UNSPECIFIED {
			return fmt.Errorf("%w: report of %s judged %v (%s)", errNotAllowed, subjects[i], v.Kind, v.Evidence)
		}
	}
	return nil
}

func (o optoutdOps) CacheCounts() (CacheCounts, bool) {
	o.enf.mu.Lock()
	cache := o.enf.caches[o.c]
	o.enf.mu.Unlock()
	if cache == nil {
		return CacheCounts{}, false
	}
	st := cache.Stats()
	return CacheCounts{Hits: st.Hits, Misses: st.Misses, Refusals: st.Refusals, Rounds: st.Rounds}, true
}
