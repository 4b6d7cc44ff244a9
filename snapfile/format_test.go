package snapfile_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/optoutd/optoutd/snapfile"
	"google.golang.org/protobuf/proto"
)

// fixtures are the snapshot files written by the first release of the
// format (fsm/testdata/snapshots, see fsm's snapfixture_test.go).
func fixtures(t *testing.T) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "fsm", "testdata", "snapshots", "*.snap"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no snapshot fixtures (%v)", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func frame(t testing.TB, hdr *snapfile.Header, state []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	err := snapfile.Write(&buf, hdr, func(w io.Writer) (int64, error) {
		n, err := w.Write(state)
		return int64(n), err
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFixturesFrameAgain: each fixture verifies, and framing its header
// and state with Write gives the fixture back, byte for byte.
func TestFixturesFrameAgain(t *testing.T) {
	for name, b := range fixtures(t) {
		hdr, err := snapfile.Verify(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		state := b[len(b)-32-int(hdr.StateBytes) : len(b)-32]
		if again := frame(t, proto.Clone(hdr).(*snapfile.Header), state); !bytes.Equal(again, b) {
			t.Errorf("%s: framed again, %d bytes differ from the fixture's %d", name, len(again), len(b))
		}
	}
}

// TestDamageIsRefused: a stream with any byte changed, cut short or with
// bytes after the checksum is refused with ErrBadSnapshot; an intact one
// verifies, and PeekHeader leaves it intact for the next reader.
func TestDamageIsRefused(t *testing.T) {
	good := frame(t, &snapfile.Header{AppliedIndex: 7, AppliedTerm: 2, StateBytes: 1000}, bytes.Repeat([]byte("state"), 200))
	br := bufio.NewReader(bytes.NewReader(good))
	if hdr, err := snapfile.PeekHeader(br); err != nil || hdr.AppliedIndex != 7 {
		t.Fatalf("PeekHeader = %v, %v", hdr, err)
	}
	if hdr, err := snapfile.Verify(br); err != nil || hdr.AppliedIndex != 7 || hdr.AppliedTerm != 2 || hdr.FormatVersion != 1 {
		t.Fatalf("Verify after PeekHeader = %v, %v", hdr, err)
	}
	damaged := map[string][]byte{
		"empty":          nil,
		"trailing bytes": append(append([]byte(nil), good...), 'x'),
		"truncated":      good[:len(good)-1],
		"no checksum":    good[:len(good)-32],
	}
	for _, at := range []int{0, 9, 14, 40, len(good) - 500, len(good) - 1} {
		b := append([]byte(nil), good...)
		b[at] ^= 0x01
		damaged["a byte flipped at "+strconv.Itoa(at)] = b
	}
	for name, b := range damaged {
		if _, err := snapfile.Verify(bytes.NewReader(b)); !errors.Is(err, snapfile.ErrBadSnapshot) {
			t.Errorf("%s: Verify = %v, want ErrBadSnapshot", name, err)
		}
		// ReadToFile reads up to the checksum and no further, so only the
		// other damage must fail it.
		path := filepath.Join(t.TempDir(), "state")
		if _, err := snapfile.ReadToFile(bytes.NewReader(b), path); name != "trailing bytes" && !errors.Is(err, snapfile.ErrBadSnapshot) {
			t.Errorf("%s: ReadToFile = %v, want ErrBadSnapshot", name, err)
		}
	}
}

// FuzzVerify: Verify never panics, and a stream it accepts frames again to
// the same bytes.
func FuzzVerify(f *testing.F) {
	f.Add(frame(f, &snapfile.Header{AppliedIndex: 1, StateBytes: 3}, []byte("abc")))
	f.Add([]byte("OPTSNAP1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		hdr, err := snapfile.Verify(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, snapfile.ErrBadSnapshot) {
				t.Fatalf("Verify error %v wraps no ErrBadSnapshot", err)
			}
			return
		}
		state := b[len(b)-32-int(hdr.StateBytes) : len(b)-32]
		if again := frame(t, hdr, state); !bytes.Equal(again, b) {
			t.Fatalf("accepted stream frames again differently")
		}
	})
}
