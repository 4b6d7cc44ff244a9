package optoutd

import "testing"

// TestStringsOfOutOfRangeValuesDoNotPanic: an enum value outside the known
// ones (a newer peer, a bug) prints its number instead of panicking.
func TestStringsOfOutOfRangeValuesDoNotPanic(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{AuditKind(9).String(), "auditkind(9)"},
		{Basis(-1).String(), "basis(-1)"},
		{Role(42).String(), "role(42)"},
		{Role(4).String(), "admin"},
		{Basis(4).String(), "erased"},
		{AuditKind(2).String(), "erase"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
