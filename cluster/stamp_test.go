package cluster

import (
	"testing"
	"time"
)

// TestStampsNeverGoBack: a leader clock behind the latest stamp (issued by
// this node or applied from another leader's entries) is raised to it.
func TestStampsNeverGoBack(t *testing.T) {
	var s stamper
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		now     time.Time
		applied int64
		want    time.Time
		behind  time.Duration
	}{
		{t0, 0, t0, 0},
		{t0.Add(time.Second), 0, t0.Add(time.Second), 0},
		{t0, 0, t0.Add(time.Second), time.Second},                                                             // behind what this node issued
		{t0.Add(2 * time.Second), t0.Add(time.Hour).UnixNano(), t0.Add(time.Hour), time.Hour - 2*time.Second}, // behind an applied entry
		{t0.Add(2 * time.Hour), 0, t0.Add(2 * time.Hour), 0},                                                  // forward: followed
	} {
		got, behind := s.next(tc.now, tc.applied)
		if !got.Equal(tc.want) || behind != tc.behind {
			t.Fatalf("next(%v, %d) = %v, %v; want %v, %v", tc.now, tc.applied, got, behind, tc.want, tc.behind)
		}
	}
}
