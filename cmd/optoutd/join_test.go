package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// TestJoinStopsOnceTheLogArrives: when an attempt's answer is lost but the
// attempt was applied, the node starts receiving the cluster's log; join
// then reports success instead of retrying (a retry could find the node
// promoted already and be refused as "lost its state").
func TestJoinStopsOnceTheLogArrives(t *testing.T) {
	var checks atomic.Int32
	received := func() bool { return checks.Add(1) > 1 } // the log arrives after the first attempt
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Nothing listens on the endpoint: the first attempt fails as a lost
	// answer would.
	err := join(ctx, slog.New(slog.DiscardHandler), "http://127.0.0.1:1", "n4", "127.0.0.1:2", 20*time.Second, received)
	if err != nil {
		t.Fatalf("join after the log arrived: %v", err)
	}
	if checks.Load() != 2 {
		t.Fatalf("join checked for the log %d times, want 2 (once per attempt)", checks.Load())
	}
	// Without the log, the same join fails at its deadline.
	err = join(ctx, slog.New(slog.DiscardHandler), "http://127.0.0.1:1", "n4", "127.0.0.1:2", 300*time.Millisecond, func() bool { return false })
	if err == nil {
		t.Fatal("join with an unreachable cluster and no log succeeded")
	}
}
