package fsm

import (
	"fmt"
	"testing"

	"github.com/optoutd/optoutd"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
)

// TestRecordsPagesCoverEveryRecordOnce: paging with the returned key
// visits every record exactly once, in key order, with or without a
// purpose filter; a filter that matches nothing still ends, a budget of
// keys at a time.
func TestRecordsPagesCoverEveryRecordOnce(t *testing.T) {
	b := newBatchFSM(t)
	var sets []*fsmv1.SetCommand
	for i := range 250 {
		p := "analytics"
		if i%5 == 0 {
			p = "email_marketing"
		}
		sets = append(sets, out(fmt.Sprintf("s%d", i), p))
	}
	if r := b.apply(&fsmv1.SetBatchCommand{Sets: sets}); r.ErrorCode != 0 {
		t.Fatal(r.ErrorMessage)
	}
	for _, tc := range []struct {
		purpose string
		want    int
	}{{"", 250}, {"email_marketing", 50}, {"analytics", 200}, {"no_such", 0}} {
		seen := map[optoutd.Key]bool{}
		var after optoutd.Key
		pages := 0
		for {
			var recs []optoutd.Record
			var next optoutd.Key
			b.view(func(r *Reader) error {
				var err error
				recs, next, err = r.Records(after, tc.purpose, 7)
				return err
			})
			pages++
			if len(recs) > 7 {
				t.Fatalf("a page of %d", len(recs))
			}
			for _, rec := range recs {
				if seen[rec.Key] {
					t.Fatalf("%s twice", rec.Key)
				}
				if tc.purpose != "" && rec.Key.Purpose != tc.purpose {
					t.Fatalf("filter %q returned %s", tc.purpose, rec.Key)
				}
				seen[rec.Key] = true
			}
			if next == (optoutd.Key{}) {
				break
			}
			after = next
			if pages > 1000 {
				t.Fatal("paging does not end")
			}
		}
		if len(seen) != tc.want {
			t.Errorf("purpose %q: %d records, want %d", tc.purpose, len(seen), tc.want)
		}
		if tc.purpose == "no_such" && pages < 2 {
			t.Errorf("an unmatched filter scanned everything in %d page", pages)
		}
	}
}
