package client_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
)

// TestCacheOptionsNameTheFieldAndTheLimit: a bad option is refused before
// anything is sent, with the field and its limit.
func TestCacheOptionsNameTheFieldAndTheLimit(t *testing.T) {
	c := newClient(t, []string{refused(t)})
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprintf("p%d", i)
	}
	for _, tc := range []struct {
		opts client.CacheOptions
		want []string
	}{
		{client.CacheOptions{MaxSubjects: -1}, []string{"CacheOptions.MaxSubjects", "-1", "1..10000000"}},
		{client.CacheOptions{MaxSubjects: 10_000_001}, []string{"CacheOptions.MaxSubjects", "1..10000000"}},
		{client.CacheOptions{MaxLag: -time.Second}, []string{"CacheOptions.MaxLag", "at most 1m0s"}},
		{client.CacheOptions{MaxLag: 2 * time.Minute}, []string{"CacheOptions.MaxLag", "at most 1m0s"}},
		{client.CacheOptions{RoundTimeout: -1}, []string{"CacheOptions.RoundTimeout", "at most 1m0s"}},
		{client.CacheOptions{RoundTimeout: time.Hour}, []string{"CacheOptions.RoundTimeout", "at most 1m0s"}},
		{client.CacheOptions{StallTimeout: time.Second}, []string{"CacheOptions.StallTimeout", "2s..10m0s"}},
		{client.CacheOptions{Purposes: many}, []string{"CacheOptions.Purposes", "65 entries, at most 64"}},
		{client.CacheOptions{Purposes: []string{"email_marketing", "Email Marketing"}}, []string{"CacheOptions.Purposes[1]", "[a-z0-9_.-]{1,64}"}},
	} {
		cc, err := client.NewCache(ctx(t), c, tc.opts)
		if err == nil {
			cc.Close()
			t.Errorf("NewCache(%+v) accepted", tc.opts)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("NewCache(%+v) = %q, want it to name %q", tc.opts, err, w)
			}
		}
		if strings.Contains(err.Error(), "read index") {
			t.Errorf("NewCache(%+v) reached the network before refusing its options: %v", tc.opts, err)
		}
	}
	if _, err := client.NewCache(ctx(t), nil, client.CacheOptions{}); err == nil {
		t.Error("NewCache with a nil Client accepted")
	}
}

func newCache(t *testing.T, f *fakeCluster, opts client.CacheOptions) *client.Cache {
	t.Helper()
	cc, err := client.NewCache(ctx(t), newClient(t, []string{f.url}), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Close)
	return cc
}

func mustCheck(t *testing.T, cc *client.Cache, subject, purpose string) client.Decision {
	t.Helper()
	d, err := cc.Check(ctx(t), subject, purpose)
	if err != nil {
		t.Fatalf("Check %s/%s: %v", subject, purpose, err)
	}
	return d
}

func wantDecision(t *testing.T, d client.Decision, allow, cached bool, what string) {
	t.Helper()
	if d.Allow != allow || d.Cached != cached || d.FailedClosed {
		t.Fatalf("%s: allow=%v cached=%v failedClosed=%v, want allow=%v cached=%v", what, d.Allow, d.Cached, d.FailedClosed, allow, cached)
	}
}

// TestCacheServesWhatTheStreamHasNotInvalidated: a second lookup is a hit;
// a change of the subject (of the purpose, or of "all") makes the next
// lookup a miss that sees it; a catalog change, an erasure of another
// subject drop everything.
func TestCacheServesWhatTheStreamHasNotInvalidated(t *testing.T) {
	f := newFakeCluster(t)
	cc := newCache(t, f, client.CacheOptions{MaxLag: time.Minute}) // a slow machine is no refusal here
	wantDecision(t, mustCheck(t, cc, "u1", "email"), true, false, "first lookup")
	d := mustCheck(t, cc, "u1", "email")
	wantDecision(t, d, true, true, "second lookup")
	if d.Check.ReadIndex < 100 || d.Check.CatalogVersion != 5 {
		t.Errorf("a hit's answer %v lacks the read index and catalog", d.Check)
	}
	wantDecision(t, mustCheck(t, cc, "u2", "email"), true, false, "another subject")

	f.set("u1", "email", optoutv1.State_STATE_OPTED_OUT)
	wantDecision(t, mustCheck(t, cc, "u1", "email"), false, false, "after u1 opted out")
	wantDecision(t, mustCheck(t, cc, "u1", "email"), false, true, "again")
	wantDecision(t, mustCheck(t, cc, "u2", "email"), true, true, "u2, untouched")

	f.set("u2", "all", optoutv1.State_STATE_OPTED_OUT)
	wantDecision(t, mustCheck(t, cc, "u2", "email"), false, false, "after u2 opted out of all")

	f.defineCatalog()
	wantDecision(t, mustCheck(t, cc, "u1", "email"), false, false, "after a catalog change")
	wantDecision(t, mustCheck(t, cc, "u1", "email"), false, true, "again")

	f.erase("u3")
	wantDecision(t, mustCheck(t, cc, "u1", "email"), false, false, "after an erasure")
	wantDecision(t, mustCheck(t, cc, "u3", "email"), false, false, "the erased subject")

	st := cc.Stats()
	if st.Hits != 4 || st.Misses != 7 || st.Refusals != 0 || st.Rounds != 11 || st.Flushes != 2 || !st.Connected {
		t.Errorf("Stats = %+v, want 4 hits, 7 misses, 11 rounds, 2 flushes", st)
	}
	if f.checks.Load() != 7 {
		t.Errorf("the cluster saw %d Checks, want one per miss (7)", f.checks.Load())
	}
}

// TestOverrideDecisionsAreNotKept: an override stops counting at its
// expiry by the nodes' clocks, before any change reaches the stream, so a
// decision an override made is answered but never served from memory.
func TestOverrideDecisionsAreNotKept(t *testing.T) {
	f := newFakeCluster(t)
	f.mu.Lock()
	f.override = 9
	f.mu.Unlock()
	cc := newCache(t, f, client.CacheOptions{MaxLag: time.Minute})
	for i := 0; i < 3; i++ {
		d := mustCheck(t, cc, "u1", "email")
		wantDecision(t, d, true, false, "under an override")
		if d.Check.OverrideId != 9 {
			t.Fatalf("the answer lost its override: %v", d.Check)
		}
	}
	if st := cc.Stats(); st.Hits != 0 || st.Misses != 3 {
		t.Fatalf("Stats = %+v, want every lookup a miss", st)
	}
}

// TestACheckOvertakenByAChangeIsNotStored: a change of the subject that
// the stream delivers while a miss's Check is out may postdate the Check's
// answer, which then must not be stored (else the cache would serve it
// after the change).
func TestACheckOvertakenByAChangeIsNotStored(t *testing.T) {
	f := newFakeCluster(t)
	cc := newCache(t, f, client.CacheOptions{MaxLag: time.Minute})
	f.beforeNextCheck(func(subject string) {
		v := f.set(subject, "email", optoutv1.State_STATE_OPTED_OUT)
		waitUntil(t, func() bool { return cc.Stats().Progress >= v }, "the stream delivers the change")
	})
	wantDecision(t, mustCheck(t, cc, "u1", "email"), true, false, "the overtaken lookup (the Check's answer)")
	wantDecision(t, mustCheck(t, cc, "u1", "email"), false, false, "the next lookup")
	wantDecision(t, mustCheck(t, cc, "u1", "email"), false, true, "then")
}

// TestCacheRefusesWhenCutOrLagging: a cut stream makes lookups fail with
// ErrCacheDisconnected (Gate denies) until it is back; a stream that stops
// delivering while the log moves makes them fail with ErrCacheLagging; in
// neither case is an older answer served.
func TestCacheRefusesWhenCutOrLagging(t *testing.T) {
	f := newFakeCluster(t)
	cc := newCache(t, f, client.CacheOptions{MaxLag: 50 * time.Millisecond})
	wantDecision(t, mustCheck(t, cc, "u1", "email"), true, false, "before the cut")
	mustCheck(t, cc, "u1", "email")

	f.cutStreams(true)
	waitUntil(t, func() bool { return !cc.Stats().Connected }, "the cache sees the cut")
	d, err := cc.Gate(ctx(t), "u1", "email")
	if !errors.Is(err, client.ErrCacheDisconnected) || d.Allow || !d.FailedClosed {
		t.Fatalf("Gate with the stream cut = %+v, %v; want a fail-closed deny with ErrCacheDisconnected", d, err)
	}
	f.cutStreams(false)
	waitUntil(t, func() bool { return cc.Stats().Connected }, "the stream reconnects")
	wantDecision(t, mustCheck(t, cc, "u1", "email"), true, true, "after the reconnect")

	f.freeze(true)
	v := f.set("u1", "email", optoutv1.State_STATE_OPTED_OUT)
	d, err = cc.Gate(ctx(t), "u1", "email")
	if !errors.Is(err, client.ErrCacheLagging) || d.Allow || !d.FailedClosed {
		t.Fatalf("Gate with the stream behind = %+v, %v; want a fail-closed deny with ErrCacheLagging", d, err)
	}
	f.freeze(false)
	waitUntil(t, func() bool { return cc.Stats().Progress >= v }, "the stream catches up")
	wantDecision(t, mustCheck(t, cc, "u1", "email"), false, false, "once caught up")
	if st := cc.Stats(); st.Refusals != 2 {
		t.Errorf("Stats = %+v, want 2 refusals", st)
	}
}

// TestCacheRestartsAfterRetention: a stream refused with OUT_OF_RANGE
// (retention removed changes the cache had not read) restarts from a fresh
// read index, with everything flushed.
func TestCacheRestartsAfterRetention(t *testing.T) {
	f := newFakeCluster(t)
	cc := newCache(t, f, client.CacheOptions{MaxLag: 50 * time.Millisecond})
	mustCheck(t, cc, "u1", "email")
	f.freeze(true)
	f.set("u1", "email", optoutv1.State_STATE_OPTED_OUT)
	f.mu.Lock()
	f.floor = f.index // the change above is gone before the cache read it
	f.mu.Unlock()
	f.cutStreams(false)
	f.freeze(false)
	waitUntil(t, func() bool { st := cc.Stats(); return st.Connected && st.Flushes == 1 }, "the cache restarts")
	wantDecision(t, mustCheck(t, cc, "u1", "email"), false, false, "after the restart")
}

// TestCacheOnlyCachesThePurposesItFollows: with Purposes set, other
// purposes go to the cluster every time; a receipt always does.
func TestCacheOnlyCachesThePurposesItFollows(t *testing.T) {
	f := newFakeCluster(t)
	cc := newCache(t, f, client.CacheOptions{Purposes: []string{"email"}})
	for range 2 {
		wantDecision(t, mustCheck(t, cc, "u1", "sms"), true, false, "a purpose not followed")
	}
	mustCheck(t, cc, "u1", "email")
	wantDecision(t, mustCheck(t, cc, "u1", "email"), true, true, "a followed purpose")
	wantDecision(t, mustCheck(t, cc, "u1", "all"), true, false, "all")
	if d, err := cc.Gate(ctx(t), "u1", "email", func(r *optoutv1.CheckRequest) { r.Receipt = true }); err != nil || d.Cached {
		t.Fatalf("Gate with a receipt = %+v, %v; want the cluster's answer", d, err)
	}
	if st := cc.Stats(); st.Uncached != 3 || st.Hits != 1 || st.Misses != 2 {
		t.Errorf("Stats = %+v, want 3 uncached, 1 hit, 2 misses", st)
	}
	cc.Close()
	if _, err := cc.Check(ctx(t), "u1", "email"); !errors.Is(err, client.ErrCacheClosed) {
		t.Errorf("Check after Close: %v, want ErrCacheClosed", err)
	}
}

// TestASilentStreamIsReopened: a stream that brings nothing, not even
// the idle progress, for StallTimeout (its node stopped, the connection
// still open) is dropped and opened again.
func TestASilentStreamIsReopened(t *testing.T) {
	f := newFakeCluster(t)
	cc := newCache(t, f, client.CacheOptions{StallTimeout: 2 * time.Second})
	f.freeze(true)
	waitUntil(t, func() bool { return f.streams.Load() >= 2 }, "the silent stream is reopened")
	if cc.Stats().Connected {
		t.Error("a cache whose new stream has said nothing counts itself connected")
	}
	f.freeze(false)
	waitUntil(t, func() bool { return cc.Stats().Connected }, "the new stream is up")
}

func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestWatchDeliversTheFirstProgressOfAStream: a watch from the current
// version hears "nothing newer than N" at once, though N is its cursor:
// that is how a cache learns its stream is up while nothing is written.
// Later progress that does not move is not repeated.
func TestWatchDeliversTheFirstProgressOfAStream(t *testing.T) {
	f := newFakeCluster(t)
	c := newClient(t, []string{f.url})
	stop := errors.New("stop")
	var got []uint64
	err := c.Watch(ctx(t), 100, nil, func(ev client.WatchEvent) error {
		if ev.Change != nil {
			return fmt.Errorf("unexpected change %v", ev.Change)
		}
		got = append(got, ev.Progress)
		switch len(got) {
		case 1:
			f.freeze(false) // the node sends progress 100 again
			f.defineCatalog()
		case 2:
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || len(got) != 2 || got[0] != 100 || got[1] != 101 {
		t.Fatalf("Watch from 100 delivered progress %v (%v), want [100 101]", got, err)
	}
}
