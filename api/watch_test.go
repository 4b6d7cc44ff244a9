package api_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

// auditView is a memView with an audit log: entries above the compaction
// floor, and the floor itself, as retention leaves them.
type auditView struct {
	memView
	floor   uint64
	entries []optoutd.AuditEntry
}

func (v auditView) Settings() (optoutd.Settings, error) {
	return optoutd.Settings{Initialized: true, CatalogVersion: catalogVersion, AuditCompactedThrough: v.floor}, nil
}

func (v auditView) Changes(after uint64, limit int) ([]optoutd.AuditEntry, error) {
	var out []optoutd.AuditEntry
	for _, e := range v.entries {
		if e.Version > after && e.Version > v.floor && (len(out) < limit || e.Version == out[len(out)-1].Version) {
			out = append(out, e)
		}
	}
	return out, nil
}

func entries(versions ...uint64) []optoutd.AuditEntry {
	out := make([]optoutd.AuditEntry, len(versions))
	for i, v := range versions {
		out[i] = optoutd.AuditEntry{Version: v, SubjectID: "u1", Purpose: "email_marketing", NewState: optoutd.StateOptedOut}
	}
	return out
}

// watchStore serves views from a function the test can change between
// the watch's reads.
func watchStore(view func() auditView) *fakeStore {
	s := &fakeStore{}
	s.ReadLocalFn = func(fn func(optoutd.View) error) error { return fn(view()) }
	return s
}

func TestWatchBelowRetainedHistoryIsOutOfRange(t *testing.T) {
	s := serve(t, watchStore(func() auditView {
		return auditView{memView: memView{applied: 12}, floor: 5, entries: entries(6, 9, 12)}
	}), api.Options{})
	c := optoutv1connect.NewOptOutServiceClient(http1Client(t), s.URL)
	stream, err := c.Watch(ctx(t), connect.NewRequest(&optoutv1.WatchRequest{FromVersion: 2}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	for stream.Receive() {
		t.Fatalf("a watch from below the retained history sent %v", stream.Msg())
	}
	if connect.CodeOf(stream.Err()) != connect.CodeOutOfRange || !strings.Contains(stream.Err().Error(), "oldest version a watch can start from is 5") {
		t.Fatalf("want out_of_range naming version 5, got %v", stream.Err())
	}
}

// TestWatchOvertakenByRetentionIsOutOfRange: retention that removes
// entries a running watch has not read yet must end the watch with
// out_of_range, never let it skip them silently.
func TestWatchOvertakenByRetentionIsOutOfRange(t *testing.T) {
	var mu sync.Mutex
	v := auditView{memView: memView{applied: 3}, entries: entries(1, 2, 3)}
	s := serve(t, watchStore(func() auditView { mu.Lock(); defer mu.Unlock(); return v }), api.Options{})
	c := optoutv1connect.NewOptOutServiceClient(http1Client(t), s.URL)
	stream, err := c.Watch(ctx(t), connect.NewRequest(&optoutv1.WatchRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var got []uint64
	for stream.Receive() {
		switch m := stream.Msg().Event.(type) {
		case *optoutv1.WatchResponse_Change:
			got = append(got, m.Change.Version)
		case *optoutv1.WatchResponse_Progress:
			if m.Progress.AppliedIndex == 3 {
				// Versions 4..8 are written and compacted away, with 9 kept,
				// before the watch reads again.
				mu.Lock()
				v = auditView{memView: memView{applied: 9}, floor: 8, entries: entries(9)}
				mu.Unlock()
			}
		}
	}
	if len(got) != 3 || got[2] != 3 {
		t.Fatalf("the first page should deliver 1, 2, 3; got %v", got)
	}
	if connect.CodeOf(stream.Err()) != connect.CodeOutOfRange || !strings.Contains(stream.Err().Error(), "retention removed changes after version 3") {
		t.Fatalf("want out_of_range after the watch was overtaken by retention, got %v after %v", stream.Err(), got)
	}
}

// definedView is an auditView whose catalog also defines extra.
type definedView struct {
	auditView
	extra string
}

func (v definedView) Purpose(name string) (optoutd.Purpose, error) {
	if name == v.extra {
		return optoutd.Purpose{Name: name, Default: optoutd.DefaultAllow, Version: 8}, nil
	}
	return v.auditView.Purpose(name)
}

// TestWatchOfUndefinedPurposeIsNotFound: a watch on a purpose the catalog
// does not define ends at once with not_found naming it, as Check does,
// instead of waiting forever for changes that cannot come; and it is the
// cluster's catalog that decides (a linearizable read), not a lagging
// node's.
func TestWatchOfUndefinedPurposeIsNotFound(t *testing.T) {
	local := auditView{memView: memView{applied: 3}, entries: entries(1, 2, 3)}
	for _, tc := range []struct {
		name     string
		purposes []string
		cluster  string // a purpose the linearizable read defines, which this node has not applied yet
		want     connect.Code
	}{
		{"typo", []string{"email_marketing", "nonexist"}, "", connect.CodeNotFound},
		{"defined", []string{"email_marketing", optoutd.AllPurposes}, "", 0},
		{"defined on the leader, not applied here yet", []string{"loyalty_emails"}, "loyalty_emails", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := watchStore(func() auditView { return local })
			reads := 0
			store.ReadFn = func(_ context.Context, fn func(optoutd.View) error) (uint64, error) {
				reads++
				return 3, fn(definedView{auditView: local, extra: tc.cluster})
			}
			s := serve(t, store, api.Options{})
			c := optoutv1connect.NewOptOutServiceClient(http1Client(t), s.URL)
			wctx, cancel := context.WithCancel(ctx(t))
			defer cancel()
			stream, err := c.Watch(wctx, connect.NewRequest(&optoutv1.WatchRequest{Purposes: tc.purposes}))
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Close()
			got := stream.Receive()
			if tc.want == 0 {
				if !got {
					t.Fatalf("watch of defined purposes %v ended: %v", tc.purposes, stream.Err())
				}
				if tc.cluster == "" && reads != 0 {
					t.Errorf("a watch of purposes this node defines made %d linearizable reads, want 0", reads)
				}
				return
			}
			if got {
				t.Fatalf("a watch of %v sent %v", tc.purposes, stream.Msg())
			}
			err = stream.Err()
			if connect.CodeOf(err) != tc.want || !strings.Contains(err.Error(), `purposes[1]: purpose "nonexist" is not defined`) {
				t.Fatalf("want %v naming purposes[1] \"nonexist\", got %v", tc.want, err)
			}
			if reads != 1 {
				t.Errorf("the refusal made %d linearizable reads, want 1 (to rule out a lagging node)", reads)
			}
		})
	}
}

// TestWatchSendsProgressAsSoonAsTheCursorMoves: when the node applies
// entries that are no audit change (a catalog change, a leader's no-op),
// or changes the watch filters out, the watch says so at once, not on its
// idle timer: a client cache waits for progress at or above a read index
// before it answers. The fake WaitApplied never times out, so a watch
// that only sent progress on its timer would never send 5 or 9.
func TestWatchSendsProgressAsSoonAsTheCursorMoves(t *testing.T) {
	var mu sync.Mutex
	v := auditView{memView: memView{applied: 3}, entries: entries(1, 2, 3)}
	moved := make(chan struct{}, 1)
	release := make(chan struct{})
	st := watchStore(func() auditView { mu.Lock(); defer mu.Unlock(); return v })
	st.WaitAppliedFn = func(ctx context.Context, index uint64) error {
		for {
			mu.Lock()
			applied := v.applied
			mu.Unlock()
			if applied >= index {
				return nil
			}
			select {
			case <-moved:
			case <-release:
				return context.Canceled
			}
		}
	}
	s := serve(t, st, api.Options{})
	t.Cleanup(func() { close(release) }) // before the server closes
	c := optoutv1connect.NewOptOutServiceClient(http1Client(t), s.URL)
	wctx, cancel := context.WithTimeout(ctx(t), 10*time.Second)
	defer cancel()
	stream, err := c.Watch(wctx, connect.NewRequest(&optoutv1.WatchRequest{Purposes: []string{"email_marketing"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	advance := func(applied uint64, more ...optoutd.AuditEntry) {
		mu.Lock()
		v.applied = applied
		v.entries = append(v.entries, more...)
		mu.Unlock()
		moved <- struct{}{}
	}
	var got []string
	for stream.Receive() {
		switch m := stream.Msg().Event.(type) {
		case *optoutv1.WatchResponse_Change:
			got = append(got, "change "+u64(m.Change.Version))
		case *optoutv1.WatchResponse_Progress:
			got = append(got, "progress "+u64(m.Progress.AppliedIndex))
			switch m.Progress.AppliedIndex {
			case 3:
				advance(5) // two entries without an audit change
			case 5: // a change to a purpose this watch does not follow
				advance(9, optoutd.AuditEntry{Version: 8, SubjectID: "u2", Purpose: "sms_marketing"})
			}
		}
		if len(got) == 6 {
			break
		}
	}
	want := []string{"change 1", "change 2", "change 3", "progress 3", "progress 5", "progress 9"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("watch sent %v, want %v (stream error: %v)", got, want, stream.Err())
	}
}

// TestWatchReadsEveryPage: a backlog longer than one page (the server
// reads 512 changes per page) is delivered whole before the first
// progress; a batch's changes at one version come as one group.
func TestWatchReadsEveryPage(t *testing.T) {
	const n = 1300
	vs := make([]uint64, n)
	for i := range vs {
		vs[i] = uint64(i + 1)
	}
	all := entries(vs...)
	group := entries(n+1, n+1, n+1)
	for i := range group {
		group[i].Seq, group[i].SubjectID = uint32(i), "g"+u64(uint64(i))
	}
	all = append(all, group...)
	s := serve(t, watchStore(func() auditView { return auditView{memView: memView{applied: n + 1}, entries: all} }), api.Options{})
	c := optoutv1connect.NewOptOutServiceClient(http1Client(t), s.URL)
	wctx, cancel := context.WithTimeout(ctx(t), 10*time.Second)
	defer cancel()
	req := connect.NewRequest(&optoutv1.WatchRequest{})
	req.Header().Set("Optout-Schema-Version", "4")
	stream, err := c.Watch(wctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	next := uint64(1)
	for stream.Receive() {
		switch m := stream.Msg().Event.(type) {
		case *optoutv1.WatchResponse_Change:
			if m.Change.Version != next {
				t.Fatalf("change %d after %d: the watch skipped", m.Change.Version, next-1)
			}
			next++
		case *optoutv1.WatchResponse_Changes:
			if next != n+1 || len(m.Changes.Entries) != 3 || m.Changes.Entries[2].Seq != 2 {
				t.Fatalf("group at %d with %d entries", next, len(m.Changes.Entries))
			}
			next++
		case *optoutv1.WatchResponse_Progress:
			if next != n+2 || m.Progress.AppliedIndex != n+1 {
				t.Fatalf("progress %d before change %d was sent", m.Progress.AppliedIndex, next)
			}
			return
		}
	}
	t.Fatalf("stream ended at %d: %v", next, stream.Err())
}
