package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
)

// TestCacheIsLinearizableEndToEnd: writes go through one node while
// readers ask a client.Cache whose stream comes from another. Every read
// sees at least the last write to its subject acknowledged before the read
// began, hits happen, and every write is seen by the read right after it.
func TestCacheIsLinearizableEndToEnd(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader := pc.leader(ctx)
	fs := pc.followers(leader)
	writer := pc.clientOf(fs[0]) // forwarded to the leader
	// MaxLag above the default: a loaded test machine may take longer to
	// apply than a production one, and a refusal here proves nothing.
	cache, err := client.NewCache(ctx, pc.all(), client.CacheOptions{Watch: pc.clientOf(fs[1]), MaxLag: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()

	type acked struct {
		version uint64
		out     bool // opted out
	}
	const purpose, nSubjects, nWrites, nReaders = "email_marketing", 8, 80, 3
	var (
		mu         sync.Mutex
		last       = map[string]acked{}
		violations []string
		lagging    int
		reads      int
	)
	subject := func(i int) string { return fmt.Sprintf("cache-u%d", i%nSubjects) }
	// read checks one cache answer against the last write acknowledged
	// before it began.
	read := func(s string) error {
		mu.Lock()
		want := last[s]
		mu.Unlock()
		d, err := cache.Check(ctx, s, purpose)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, client.ErrCacheLagging):
			lagging++
			return nil
		case err != nil:
			return err
		}
		reads++
		got := d.Check.GetVersion()
		if got < want.version || got == want.version && d.Allow == want.out {
			violations = append(violations, fmt.Sprintf("%s: read allow=%v at version %d (cached %v) after a write at version %d (opted out %v) was acknowledged",
				s, d.Allow, got, d.Cached, want.version, want.out))
		}
		return nil
	}

	stop := make(chan struct{})
	errs := make(chan error, nReaders)
	var wg sync.WaitGroup
	for r := range nReaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				if err := read(subject(i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range nWrites {
		s := subject(i)
		mu.Lock()
		cur := last[s]
		mu.Unlock()
		req := &optoutv1.SetRequest{SubjectId: s, Purpose: purpose, State: optoutv1.State_STATE_OPTED_OUT, Source: "e2e"}
		if cur.out { // re-consent replaces an opt-out only with its version (deny wins)
			req.State, req.ExpectedVersion = optoutv1.State_STATE_OPTED_IN, &cur.version
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := writer.Set(wctx, req)
		wcancel()
		if err != nil {
			t.Fatalf("write %d (%s %v): %v", i, s, req.State, err)
		}
		mu.Lock()
		last[s] = acked{version: res.Version, out: req.State == optoutv1.State_STATE_OPTED_OUT}
		mu.Unlock()
		if err := read(s); err != nil { // the read right after the write
			t.Fatalf("read after write %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	for range nReaders {
		if err := <-errs; err != nil {
			t.Fatalf("reader: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, v := range violations {
		t.Error(v)
	}
	st := cache.Stats()
	t.Logf("%d reads checked (%d refused as lagging), %d writes; cache %+v", reads, lagging, nWrites, st)
	if st.Hits == 0 || st.Misses == 0 || st.Rounds == 0 {
		t.Fatalf("cache stats %+v: want hits, misses and rounds", st)
	}
	if reads < nWrites {
		t.Fatalf("only %d reads answered", reads)
	}
}

// TestCacheWhoseStreamIsCutRefuses: a cache whose stream is cut (a TCP
// proxy drops it and refuses new connections) refuses with
// ErrCacheDisconnected, and Gate denies; once the proxy lets it through
// again it answers. A stream from a node that is stopped (SIGSTOP, the
// connection stays open) while a write commits elsewhere refuses with
// ErrCacheLagging; after SIGCONT it catches up and answers with the write.
func TestCacheWhoseStreamIsCutRefuses(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader := pc.leader(ctx)
	fs := pc.followers(leader)
	streamNode := fs[0]
	proxy := startCutProxy(t, streamNode.api)
	watch, err := client.New([]string{proxy.addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	checks, err := client.New([]string{leader.api, fs[1].api}) // not the node that will be stopped
	if err != nil {
		t.Fatal(err)
	}
	defer checks.Close()
	// A long stall timeout: the lag case must be seen before the cache
	// gives up on the stopped node's stream and reopens it.
	cache, err := client.NewCache(ctx, checks, client.CacheOptions{Watch: watch, StallTimeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	const purpose = "email_marketing"
	for range 2 {
		if d, err := cache.Check(ctx, "cut-u1", purpose); err != nil || !d.Allow {
			t.Fatalf("Check with the stream up = %+v, %v", d, err)
		}
	}
	if st := cache.Stats(); st.Hits != 1 {
		t.Fatalf("cache stats %+v, want a hit", st)
	}

	proxy.cut()
	poll(t, ctx, "a lookup refused with ErrCacheDisconnected", func() (bool, error) {
		_, err := cache.Check(ctx, "cut-u1", purpose)
		return errors.Is(err, client.ErrCacheDisconnected), nil
	})
	d, err := cache.Gate(ctx, "cut-u1", purpose)
	if d.Allow || !d.FailedClosed || !errors.Is(err, client.ErrCacheDisconnected) {
		t.Fatalf("Gate with the stream cut = %+v, %v; want a fail-closed deny", d, err)
	}
	proxy.restore()
	poll(t, ctx, "the cache answers again", func() (bool, error) {
		d, err := cache.Check(ctx, "cut-u1", purpose)
		return err == nil && d.Allow, nil
	})

	pid := streamNode.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, pid)
	continued := false
	defer func() {
		if !continued {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	w := mustSet(t, pc.clientOf(leader), "cut-u1", purpose, optoutv1.State_STATE_OPTED_OUT, nil)
	d, err = cache.Gate(ctx, "cut-u1", purpose)
	if d.Allow || !d.FailedClosed || !errors.Is(err, client.ErrCacheLagging) {
		t.Fatalf("Gate with the stream's node stopped after a write = %+v, %v; want a fail-closed deny with ErrCacheLagging", d, err)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	continued = true
	poll(t, ctx, "the cache catches up after SIGCONT", func() (bool, error) {
		d, err := cache.Check(ctx, "cut-u1", purpose)
		if errors.Is(err, client.ErrCacheLagging) || errors.Is(err, client.ErrCacheDisconnected) {
			return false, nil // still catching up
		}
		if err != nil {
			return false, err
		}
		if d.Allow || d.Check.GetVersion() < w.Version {
			return false, fmt.Errorf("after catching up the cache answered %+v, want the opt-out at version %d", d.Check, w.Version)
		}
		return true, nil
	})
	t.Logf("cache stats %+v", cache.Stats())
}
