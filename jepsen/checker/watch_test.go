package checker

import (
	"slices"
	"strings"
	"testing"

	"github.com/optoutd/optoutd/jepsen/history"
)

// watchHistory: three acknowledged writes (v3, v5, v9), one unknown write
// that did apply (v7), one answered not applied and one refused CAS.
func watchHistory() []history.Op {
	return []history.Op{
		{Type: history.Write, Key: "reg-0", Tag: "w0-1", State: "opted_out", Outcome: history.OK, Version: 3},
		{Type: history.Add, Key: "set-w1-1", Tag: "w1-1", State: "opted_out", Outcome: history.OK, Version: 5},
		{Type: history.Write, Key: "reg-1", Tag: "w0-2", State: "opted_in", Outcome: history.Unknown},
		{Type: history.CAS, Key: "reg-0", Tag: "w1-2", State: "opted_in", Outcome: history.OK, Version: 9},
		{Type: history.Write, Key: "reg-1", Tag: "w0-3", State: "opted_out", Outcome: history.NotApplied},
		{Type: history.CAS, Key: "reg-1", Tag: "w1-3", State: "opted_out", Outcome: history.Mismatch, Version: 7},
		{Type: history.Get, Key: "reg-0", Tag: "w1-2", State: "opted_in", Outcome: history.OK, Version: 9},
	}
}

func goodStream(node string) WatchStream {
	return WatchStream{Node: node, Cursor: 12, Changes: []WatchChange{
		{Version: 3, Key: "reg-0", Tag: "w0-1", State: "opted_out"},
		{Version: 5, Key: "set-w1-1", Tag: "w1-1", State: "opted_out"},
		{Version: 7, Key: "reg-1", Tag: "w0-2", State: "opted_in"},
		{Version: 9, Key: "reg-0", Tag: "w1-2", State: "opted_in"},
	}}
}

func TestCheckWatchAcceptsCompleteAgreeingStreams(t *testing.T) {
	short := goodStream("n3")
	short.Changes, short.Cursor = short.Changes[:2], 6 // behind, but not past the end
	res := CheckWatch(watchHistory(), []WatchStream{goodStream("n1"), goodStream("n2"), short}, 0)
	if !res.Valid || res.Delivered != 10 || res.Streams != 3 {
		t.Fatalf("valid streams rejected: %+v", res)
	}
}

// Each mutation of one stream must be caught, as the named kind of anomaly
// and no other.
func TestCheckWatchCatchesEachAnomaly(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(s *WatchStream)
		final  uint64
		field  func(r WatchResult) []string
		want   string
	}{
		{"missed acknowledged write", func(s *WatchStream) { s.Changes = slices.Delete(s.Changes, 1, 2) }, 0,
			func(r WatchResult) []string { return r.Missed }, "w1-1"},
		{"missed: another write at the acknowledged version", func(s *WatchStream) { s.Changes[3].Tag = "w0-2" }, 0,
			func(r WatchResult) []string { return r.Missed }, "w1-2"},
		{"change no write made", func(s *WatchStream) {
			s.Changes = append(s.Changes, WatchChange{Version: 11, Key: "reg-0", Tag: "zz", State: "opted_out"})
		}, 0, func(r WatchResult) []string { return r.Phantom }, "no write has this tag"},
		{"change of a write answered not applied", func(s *WatchStream) {
			s.Changes = append(s.Changes, WatchChange{Version: 11, Key: "reg-1", Tag: "w0-3", State: "opted_out"})
		}, 0, func(r WatchResult) []string { return r.Phantom }, "not applied"},
		{"acknowledged write at another version", func(s *WatchStream) {
			s.Changes = append(s.Changes[:3:3], WatchChange{Version: 10, Key: "reg-0", Tag: "w1-2", State: "opted_in"})
		}, 0, func(r WatchResult) []string { return r.Phantom }, "acknowledged at v9"},
		{"same write twice", func(s *WatchStream) {
			s.Changes = append(s.Changes, WatchChange{Version: 11, Key: "reg-0", Tag: "w1-2", State: "opted_in"})
		}, 0, func(r WatchResult) []string { return r.Duplicate }, "w1-2 delivered at versions 9 and 11"},
		{"out of order", func(s *WatchStream) { s.Changes[1], s.Changes[2] = s.Changes[2], s.Changes[1] }, 0,
			func(r WatchResult) []string { return r.OutOfOrder }, "version 5 delivered after 7"},
		{"stream stops short of the final index", func(s *WatchStream) {}, 20,
			func(r WatchResult) []string { return r.Stalled }, "reached v12, the cluster applied v20"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := goodStream("n2")
			bad.Changes = slices.Clone(bad.Changes)
			tc.mutate(&bad)
			other := goodStream("n1")
			if tc.final > 0 {
				other.Cursor = tc.final
			}
			res := CheckWatch(watchHistory(), []WatchStream{other, bad}, tc.final)
			got := tc.field(res)
			if res.Valid || len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), tc.want) {
				t.Fatalf("want an anomaly naming %q, got %+v", tc.want, res)
			}
		})
	}
}

func TestCheckWatchCatchesStreamsThatDisagree(t *testing.T) {
	a := goodStream("n1")
	a.Changes = slices.Delete(slices.Clone(a.Changes), 2, 3) // lacks the unknown write n2 saw
	res := CheckWatch(watchHistory(), []WatchStream{a, goodStream("n2")}, 0)
	if res.Valid || len(res.Divergent) != 1 || !strings.Contains(res.Divergent[0], "n2 delivered v7 (w0-2) that n1 did not") {
		t.Fatalf("divergence not caught: %+v", res)
	}
	if len(res.Missed)+len(res.Phantom) != 0 {
		t.Fatalf("an unknown write's absence is not a miss: %+v", res)
	}
}
