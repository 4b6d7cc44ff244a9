package fsm

import (
	"bytes"
	"fmt"
	"testing"
)

func FuzzRecordKey(f *testing.F) {
	f.Add("u1", "email_marketing")
	f.Add("", "")
	f.Add("\x00\x01", "a")
	f.Fuzz(func(t *testing.T, subject, purpose string) {
		s, p, err := splitRecordKey(recordKey(subject, purpose))
		if err != nil || s != subject || p != purpose {
			t.Fatalf("split(key(%q,%q)) = %q,%q,%v", subject, purpose, s, p, err)
		}
	})
}

// TestHMACOfIsHMACWith: the reused, memoised keyed hash gives the same
// bytes as a fresh one, across labels, values and a key change, and an
// append to a result never changes another.
func TestHMACOfIsHMACWith(t *testing.T) {
	s := &state{}
	s.setKey([]byte("k1"))
	for round := range 2 {
		for _, label := range []string{"subject", "source", "reason"} {
			for i := range memoLimit + 10 {
				v := fmt.Sprintf("v%d", i%300)
				if got, want := s.hmacOf(label, v), hmacWith(s.key, label, v); !bytes.Equal(got, want) {
					t.Fatalf("round %d: hmacOf(%s, %s) differs", round, label, v)
				}
			}
		}
		s.setKey([]byte("k2"))
	}
	a := append(s.hmacOf("subject", "u1"), 1)
	b := append(s.hmacOf("subject", "u1"), 2)
	if a[len(a)-1] != 1 || b[len(b)-1] != 2 {
		t.Fatal("appends to memoised results share memory")
	}
}
