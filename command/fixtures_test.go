package command_test

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/optoutd/optoutd/command"
	"github.com/optoutd/optoutd/command/commandtest"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// -write-fixtures adds to the current FormatVersion's file the fixtures it
// lacks, and writes other-limits.txt if it is missing (see commandtest).
var writeFixtures = flag.Bool("write-fixtures", false, "write testdata/commands/v<FormatVersion>.txt if missing")

func encodeLines(t *testing.T, fixtures map[string]proto.Message, skip map[string]bool) []string {
	t.Helper()
	var lines []string
	for name, m := range fixtures {
		if skip[name] {
			continue
		}
		b, err := command.Encode(m, commandtest.Stamp)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, name+" "+hex.EncodeToString(b))
	}
	sort.Strings(lines)
	return lines
}

func TestWriteFixtures(t *testing.T) {
	if !*writeFixtures {
		t.Skip("run with -write-fixtures to add the current format's missing fixtures")
	}
	path := commandtest.CurrentFile()
	have, err := fixtureNames(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	lines := encodeLines(t, commandtest.Current(), have)
	out := strings.Join(lines, "\n") + "\n"
	if len(have) == 0 {
		out = fmt.Sprintf("# Commands encoded by format version %d. Never edit or regenerate.\n", command.FormatVersion) + out
	}
	if len(lines) == 0 {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(out); err != nil {
		t.Fatal(err)
	}
}

func TestWriteOtherLimitFixtures(t *testing.T) {
	if !*writeFixtures {
		t.Skip("run with -write-fixtures to write other-limits.txt if it is missing")
	}
	path := commandtest.OtherLimitsFile()
	if _, err := os.Stat(path); err == nil {
		return
	}
	lines := encodeLines(t, commandtest.OtherLimits(), nil)
	out := "# Entries valid under other releases' request limits. Never edit or regenerate.\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixtureNames returns the names of the fixtures in a fixtures file.
func fixtureNames(path string) (map[string]bool, error) {
	entries, err := commandtest.Read(path)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name] = true
	}
	return names, nil
}

// TestFixturesCoverEveryCommand: every command type has a fixture of the
// current format, and the checked-in file holds all of them, so a new
// command kind cannot ship without its compatibility fixture.
func TestFixturesCoverEveryCommand(t *testing.T) {
	covered := map[fsmv1.CommandType]bool{}
	for name, m := range commandtest.Current() {
		typ, ok := command.TypeOf(m)
		if !ok {
			t.Fatalf("fixture %s is no command payload (%T)", name, m)
		}
		covered[typ] = true
	}
	for v, name := range fsmv1.CommandType_name {
		if ct := fsmv1.CommandType(v); ct != fsmv1.CommandType_COMMAND_TYPE_UNSPECIFIED && !covered[ct] {
			t.Errorf("%s has no fixture in commandtest.Current", name)
		}
	}
	have, err := fixtureNames(commandtest.CurrentFile())
	if err != nil {
		t.Fatal(err)
	}
	for name := range commandtest.Current() {
		if !have[name] {
			t.Errorf("%s lacks fixture %s; run go test ./command -run TestWriteFixtures -write-fixtures", commandtest.CurrentFile(), name)
		}
	}
}
