package client

import (
	"testing"
	"time"
)

// TestBackoffIsJitteredAndCapped: the wait before pass n is uniform in
// [0, min(500ms, 10ms*2^n)].
func TestBackoffIsJitteredAndCapped(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 20 * time.Millisecond, 3: 80 * time.Millisecond, 6: 500 * time.Millisecond, 40: 500 * time.Millisecond} {
		if got := backoff(n, func(m int64) int64 { return m - 1 }); got != want {
			t.Errorf("largest wait before pass %d: %v, want %v", n, got, want)
		}
		if got := backoff(n, func(int64) int64 { return 0 }); got != 0 {
			t.Errorf("smallest wait before pass %d: %v, want 0", n, got)
		}
	}
	for range 100 {
		if d := backoff(4, jitter); d < 0 || d > 160*time.Millisecond {
			t.Fatalf("backoff(4) = %v, outside [0, 160ms]", d)
		}
	}
}

func TestNewIdempotencyKeysDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		k := NewIdempotencyKey()
		if len(k) != 34 || seen[k] {
			t.Fatalf("key %q (len %d), seen before: %v", k, len(k), seen[k])
		}
		seen[k] = true
	}
}
