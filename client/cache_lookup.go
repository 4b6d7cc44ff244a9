package client

import (
	"context"
	"fmt"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// subjectEntry is what the cache holds for one subject: the answers of
// past Checks, by purpose. A change of the subject drops the whole entry
// (an opt-out of "all" changes every purpose's answer).
type subjectEntry map[string]cachedCheck

// cachedCheck is one Check's answer, without its read index.
type cachedCheck struct {
	decision  optoutv1.Decision
	state     optoutv1.State
	version   uint64
	basis     optoutv1.Basis
	decidedBy string
	catalog   uint64 // the catalog version it was decided under
}

func (e cachedCheck) response(readIndex uint64) *optoutv1.CheckResponse {
	return &optoutv1.CheckResponse{Decision: e.decision, State: e.state, Version: e.version, ReadIndex: readIndex,
		Basis: e.basis, DecidedByPurpose: e.decidedBy, CatalogVersion: e.catalog}
}

// pendingMisses are the misses of one subject in flight: gen moves with
// every change of the subject, so a miss that saw a change while its
// Check was out does not store an answer the change may have made stale.
type pendingMisses struct {
	gen uint64
	n   int
}

type missToken struct {
	subject    string
	gen, epoch uint64
}

// Check answers Check(subject, purpose) from memory when it can, through
// the cluster when it cannot, and is linearizable either way: the answer
// reflects every write acknowledged before the call. On any error the
// Decision is a deny, FailedClosed. Errors include ErrCacheDisconnected
// and ErrCacheLagging: the cache refuses rather than answer from state it
// cannot prove current.
func (cc *Cache) Check(ctx context.Context, subject, purpose string) (Decision, error) {
	d, err := cc.lookup(ctx, subject, purpose)
	if err != nil {
		cc.refusals.Add(1)
		return deny(), err
	}
	return d, nil
}

// Gate is Client.Gate answered by the cache, with the same fail-closed
// contract: any error is a deny, with the error for the log. A call whose
// options ask for more than the decision (a receipt) goes to the cluster.
func (cc *Cache) Gate(ctx context.Context, subject, purpose string, opts ...GateOption) (Decision, error) {
	if len(opts) > 0 {
		req := &optoutv1.CheckRequest{SubjectId: subject, Purpose: purpose}
		for _, o := range opts {
			o(req)
		}
		if req.Receipt {
			cc.uncached.Add(1)
			d, err := cc.c.Gate(ctx, subject, purpose, opts...)
			if err != nil {
				cc.refusals.Add(1)
			}
			return d, err
		}
	}
	d, err := cc.Check(ctx, subject, purpose)
	if err != nil {
		return d, fmt.Errorf("client: gate %s/%s failed closed: %w", subject, purpose, err)
	}
	return d, nil
}

func (cc *Cache) lookup(ctx context.Context, subject, purpose string) (Decision, error) {
	if cc.follows != nil && !cc.follows[purpose] {
		cc.uncached.Add(1)
		return cc.checkThrough(ctx, subject, purpose)
	}
	cc.mu.Lock()
	err := cc.usableLocked()
	cc.mu.Unlock()
	if err != nil {
		return Decision{}, err
	}
	// A read index from a round that began after this call did: every
	// write acknowledged before the call is at or below it.
	rr, err := cc.rounds.join(ctx)
	if err != nil {
		return Decision{}, fmt.Errorf("client: cache: read index: %w", err)
	}
	// Once the stream has delivered every change up to it, what memory
	// holds is at least as new as a Check at rr.index would be.
	if err := cc.caughtUp(ctx, rr.index); err != nil {
		return Decision{}, err
	}
	cc.mu.Lock()
	cc.seeCatalogLocked(rr.catalog)
	if e, ok := cc.entries.Get(subject); ok {
		if r, ok := e[purpose]; ok && r.catalog == rr.catalog {
			cc.mu.Unlock()
			cc.hits.Add(1)
			return Decision{Allow: r.decision == optoutv1.Decision_DECISION_ALLOW, Check: r.response(rr.index), Cached: true}, nil
		}
	}
	tok := cc.pendLocked(subject)
	cc.mu.Unlock()

	cc.misses.Add(1)
	resp, err := cc.c.Check(ctx, &optoutv1.CheckRequest{SubjectId: subject, Purpose: purpose})
	cc.mu.Lock()
	fresh := cc.unpendLocked(tok)
	if err == nil && fresh {
		cc.seeCatalogLocked(resp.CatalogVersion)
		// A decision an override made is not kept: the override ends by
		// the clock at its expiry, before any change reaches the stream.
		if resp.CatalogVersion == cc.catalog && resp.OverrideId == 0 {
			cc.putLocked(subject, purpose, resp)
		}
	}
	cc.mu.Unlock()
	if err != nil {
		return Decision{}, err
	}
	return Decision{Allow: resp.Decision == optoutv1.Decision_DECISION_ALLOW, Check: resp}, nil
}

// checkThrough is a plain Check through the cluster.
func (cc *Cache) checkThrough(ctx context.Context, subject, purpose string) (Decision, error) {
	r, err := cc.c.Check(ctx, &optoutv1.CheckRequest{SubjectId: subject, Purpose: purpose})
	if err != nil {
		return Decision{}, err
	}
	return Decision{Allow: r.Decision == optoutv1.Decision_DECISION_ALLOW, Check: r}, nil
}

// pendLocked registers a miss of subject before its Check is sent.
func (cc *Cache) pendLocked(subject string) missToken {
	p := cc.pending[subject]
	if p == nil {
		p = &pendingMisses{}
		cc.pending[subject] = p
	}
	p.n++
	return missToken{subject: subject, gen: p.gen, epoch: cc.epoch}
}

// unpendLocked ends a miss and reports whether nothing that could make its
// answer stale (a change of the subject, a flush) came meanwhile.
func (cc *Cache) unpendLocked(t missToken) bool {
	p := cc.pending[t.subject]
	fresh := p.gen == t.gen && cc.epoch == t.epoch
	if p.n--; p.n == 0 {
		delete(cc.pending, t.subject)
	}
	return fresh
}

func (cc *Cache) putLocked(subject, purpose string, r *optoutv1.CheckResponse) {
	e, ok := cc.entries.Get(subject)
	if !ok {
		e = subjectEntry{}
		cc.entries.Add(subject, e)
	}
	e[purpose] = cachedCheck{decision: r.Decision, state: r.State, version: r.Version, basis: r.Basis,
		decidedBy: r.DecidedByPurpose, catalog: r.CatalogVersion}
}

// invalidateLocked drops a subject's answers after a change of it.
func (cc *Cache) invalidateLocked(subject string) {
	cc.entries.Remove(subject)
	if p := cc.pending[subject]; p != nil {
		p.gen++
	}
}

// flushLocked drops everything, and every miss in flight stores nothing.
func (cc *Cache) flushLocked() {
	cc.entries = newEntries(cc.opts.MaxSubjects)
	cc.epoch++
	cc.flushes.Add(1)
}

// seeCatalogLocked notes a catalog version: answers decided under an older
// catalog may have another default and are dropped. (They could not be
// served anyway: an answer is served only under the catalog version it
// was decided with.)
func (cc *Cache) seeCatalogLocked(v uint64) {
	if v > cc.catalog {
		cc.flushLocked()
		cc.catalog = v
	}
}
