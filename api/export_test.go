package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

// TestListRecordsPagesWithTokens: the pages, by token, return every
// record once; a purpose filter keeps only its records; a bad token, page
// size or purpose is refused naming the field.
func TestListRecordsPagesWithTokens(t *testing.T) {
	st := memStore()
	for i := range 23 {
		p := "email_marketing"
		if i%4 == 0 {
			p = "sms_marketing"
		}
		if _, err := st.SetFn(ctx(t), optoutd.SetRequest{Key: optoutd.Key{SubjectID: fmt.Sprintf("u%02d", i), Purpose: p}, State: optoutd.StateOptedOut}); err != nil {
			t.Fatal(err)
		}
	}
	s := serve(t, st, api.Options{})
	c := optoutv1connect.NewAuditServiceClient(http1Client(t), s.URL)
	for _, tc := range []struct {
		purpose string
		want    int
	}{{"", 23}, {"sms_marketing", 6}} {
		seen := map[string]bool{}
		tok := ""
		for pages := 0; ; pages++ {
			if pages > 30 {
				t.Fatal("paging does not end")
			}
			r, err := c.ListRecords(ctx(t), connect.NewRequest(&optoutv1.ListRecordsRequest{Purpose: tc.purpose, PageSize: 5, PageToken: tok}))
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range r.Msg.Records {
				k := rec.SubjectId + "/" + rec.Purpose
				if seen[k] || (tc.purpose != "" && rec.Purpose != tc.purpose) {
					t.Fatalf("purpose %q: %s again or not asked for", tc.purpose, k)
				}
				seen[k] = true
			}
			if tok = r.Msg.NextPageToken; tok == "" {
				break
			}
		}
		if len(seen) != tc.want {
			t.Errorf("purpose %q: %d records, want %d", tc.purpose, len(seen), tc.want)
		}
	}
	for _, tc := range []struct {
		req  *optoutv1.ListRecordsRequest
		want string
	}{
		{&optoutv1.ListRecordsRequest{PageToken: "!!"}, "page_token"},
		{&optoutv1.ListRecordsRequest{PageToken: "OTk6eA"}, "page_token"}, // "99:x"
		{&optoutv1.ListRecordsRequest{PageToken: strings.Repeat("A", 2000)}, "page_token"},
		{&optoutv1.ListRecordsRequest{PageSize: 1001}, "page_size: 1001 is over the limit of 1000"},
		{&optoutv1.ListRecordsRequest{Purpose: "Bad Purpose"}, "purpose"},
	} {
		_, err := c.ListRecords(ctx(t), connect.NewRequest(tc.req))
		if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want invalid_argument naming %s", tc.req, err, tc.want)
		}
	}
}

// TestListChangesPagesInVersionOrder: the history comes oldest first, a
// page at a time, without splitting a version, to the end.
func TestListChangesPagesInVersionOrder(t *testing.T) {
	view := auditView{memView: memView{applied: 20}, floor: 2, entries: entries(1, 3, 4, 4, 4, 7, 9, 12, 20)}
	s := serve(t, watchReadStore(view), api.Options{})
	c := optoutv1connect.NewAuditServiceClient(http1Client(t), s.URL)
	var got []uint64
	after := uint64(0)
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		r, err := c.ListChanges(ctx(t), connect.NewRequest(&optoutv1.ListChangesRequest{AfterVersion: after, PageSize: 2}))
		if err != nil {
			t.Fatal(err)
		}
		if r.Msg.CompactedThrough != 2 {
			t.Errorf("compacted through %d, want 2", r.Msg.CompactedThrough)
		}
		for _, e := range r.Msg.Entries {
			got = append(got, e.Version)
		}
		if after = r.Msg.NextAfterVersion; after == 0 {
			break
		}
	}
	if fmt.Sprint(got) != "[3 4 4 4 7 9 12 20]" {
		t.Errorf("versions %v", got)
	}
}

func watchReadStore(v auditView) *fakeStore {
	s := watchStore(func() auditView { return v })
	s.ReadFn = func(_ context.Context, fn func(optoutd.View) error) (uint64, error) { return v.applied, fn(v) }
	return s
}
