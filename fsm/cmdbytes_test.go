package fsm

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fsmv1 "github.com/optoutd/optoutd/fsm/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// readFixtureLines returns a fixtures file's entries by name.
func readFixtureLines(t *testing.T, path string) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, ok := strings.Cut(line, " ")
		data, err := hex.DecodeString(hx)
		if !ok || err != nil {
			t.Fatalf("%s: bad fixture line %q", path, line)
		}
		out[name] = data
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no fixtures", path)
	}
	return out
}

// TestCommandFixturesAreByteIdentical pins the log-entry bytes: every entry
// an earlier format wrote decodes, and marshalling what was decoded again
// (with the format version it was written with) gives the same bytes; and
// this binary encodes each current-format fixture to exactly its line.
func TestCommandFixturesAreByteIdentical(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "commands", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixture files (%v)", err)
	}
	for _, file := range files {
		for name, data := range readFixtureLines(t, file) {
			var env fsmv1.Command
			if err := proto.Unmarshal(data, &env); err != nil {
				t.Fatalf("%s %s: envelope: %v", file, name, err)
			}
			d, err := Decode(data)
			if err != nil {
				t.Fatalf("%s %s no longer decodes: %v", file, name, err)
			}
			p, err := proto.Marshal(d.Payload)
			if err != nil {
				t.Fatal(err)
			}
			again, err := proto.Marshal(&fsmv1.Command{FormatVersion: env.FormatVersion, Type: d.Type, StampedAtUnixNanos: d.Stamp, Payload: p})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Errorf("%s %s: decoded and marshalled again differs:\n got %x\nwant %x", file, name, again, data)
			}
		}
	}
	current := map[string]map[string]proto.Message{
		currentFixturesFile(): currentFixtures(),
		otherLimitsFile:       otherLimitFixtures(),
	}
	for file, fixtures := range current {
		lines := readFixtureLines(t, filepath.FromSlash(file))
		for name, m := range fixtures {
			b, err := Encode(fixtureType(m), m, time.Unix(1700000000, 0))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, lines[name]) {
				t.Errorf("%s %s: this binary encodes\n %x\nthe fixture holds\n %x", file, name, b, lines[name])
			}
		}
	}
}
