package fsm

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	"github.com/optoutd/optoutd/command/commandtest"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
)

// The Raft log outlives binaries: entries written by every earlier command
// format must still decode and apply. The fixtures, one file per format,
// are the command package's (see commandtest).

// TestEveryFormatStillApplies decodes and applies every fixture of every
// format version so far.
func TestEveryFormatStillApplies(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(commandtest.Dir(), "v*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < int(command.FormatVersion) {
		t.Fatalf("found %d fixture files for %d format versions; add command/testdata/commands/v%d.txt with -write-fixtures", len(files), command.FormatVersion, command.FormatVersion)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f := openTemp(t)
			// Initialise with the current format first, so the older
			// formats' writes meet a defined catalog and really apply.
			initCmd, err := command.Encode(&fsmv1.InitClusterCommand{ErasureKey: make([]byte, 32), Purposes: command.PurposeDefs(optoutd.StarterCatalog)}, time.Unix(1, 0))
			if err != nil {
				t.Fatal(err)
			}
			f.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: initCmd})
			index := uint64(1)
			n := 0
			for _, line := range strings.Split(string(b), "\n") {
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				name, hx, ok := strings.Cut(line, " ")
				data, err := hex.DecodeString(hx)
				if !ok || err != nil {
					t.Fatalf("bad fixture line %q", line)
				}
				if _, err := command.Decode(data); err != nil {
					t.Fatalf("%s: fixture %s no longer decodes: %v", file, name, err)
				}
				index++
				res := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data})
				if f.Halted() != nil {
					t.Fatalf("%s: fixture %s halted the FSM: %v", file, name, f.Halted())
				}
				r, ok := res.(*fsmv1.Result)
				if !ok {
					t.Fatalf("%s: fixture %s gave %T", file, name, res)
				}
				if r.ErrorCode == fsmv1.ErrorCode_ERROR_CODE_INVALID {
					t.Fatalf("%s: fixture %s was misread as invalid: %s", file, name, r.ErrorMessage)
				}
				n++
			}
			if n == 0 {
				t.Fatalf("%s holds no fixtures", file)
			}
		})
	}
}
