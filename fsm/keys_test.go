package fsm

import "testing"

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
