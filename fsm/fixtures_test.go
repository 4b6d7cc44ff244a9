package fsm

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	fsmv1 "github.com/optoutd/optoutd/fsm/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// The Raft log outlives binaries: entries written by every earlier command
// format must still decode and apply. testdata/commands/v<N>.txt holds
// commands encoded by the binary that introduced format N, one per line
// ("name hex"), checked in and never regenerated. -write-fixtures writes the
// file for the current FormatVersion only if it does not exist yet.
var writeFixtures = flag.Bool("write-fixtures", false, "write testdata/commands/v<FormatVersion>.txt if missing")

// currentFixtures are the commands of the current format, one of each kind.
func currentFixtures() map[string]proto.Message {
	v := uint64(3) // b_set_out's index when the fixtures are applied in name order after an init
	cv := uint64(6)
	min := uint32(2)
	ret := int64(3600e9)
	return map[string]proto.Message{
		"a_init_cluster": &fsmv1.InitClusterCommand{ErasureKey: []byte("0123456789abcdef0123456789abcdef"), Purposes: StarterCatalogProto()},
		"b_set_out": &fsmv1.SetCommand{SubjectId: "u1", Purpose: "email_marketing", State: fsmv1.State_STATE_OPTED_OUT, Source: "web-form", Reason: "unsubscribe link",
			IdempotencyKey: "evt-1", IdempotencyTtlNanos: 86400e9, ClientSchemaVersion: 2, Caller: "svc-web"},
		"c_set_in_cas":      &fsmv1.SetCommand{SubjectId: "u1", Purpose: "email_marketing", State: fsmv1.State_STATE_OPTED_IN, ExpectedVersion: &v, ClientSchemaVersion: 2},
		"d_define_purpose":  &fsmv1.DefinePurposeCommand{Purpose: &fsmv1.PurposeDef{Name: "loyalty", Description: "points", DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_DENY}, ExpectedCatalogVersion: &cv, ClientSchemaVersion: 2, Caller: "admin"},
		"e_update_settings": &fsmv1.UpdateSettingsCommand{MinSchemaVersion: &min, AuditRetentionNanos: &ret, ClientSchemaVersion: 2, Caller: "admin"},
		"f_erase_subject":   &fsmv1.EraseSubjectCommand{SubjectId: "u1", Reason: "gdpr", ClientSchemaVersion: 2, Caller: "admin"},
		"g_term_start":      &fsmv1.TermStartCommand{LeaderId: "n1"},
		"h_register_node":   &fsmv1.RegisterNodeCommand{NodeId: "n2", ApiAddress: "127.0.0.1:7002"},
	}
}

func fixtureType(m proto.Message) fsmv1.CommandType {
	switch m.(type) {
	case *fsmv1.SetCommand:
		return fsmv1.CommandType_COMMAND_TYPE_SET
	case *fsmv1.TermStartCommand:
		return fsmv1.CommandType_COMMAND_TYPE_TERM_START
	case *fsmv1.RegisterNodeCommand:
		return fsmv1.CommandType_COMMAND_TYPE_REGISTER_NODE
	case *fsmv1.InitClusterCommand:
		return fsmv1.CommandType_COMMAND_TYPE_INIT_CLUSTER
	case *fsmv1.DefinePurposeCommand:
		return fsmv1.CommandType_COMMAND_TYPE_DEFINE_PURPOSE
	case *fsmv1.UpdateSettingsCommand:
		return fsmv1.CommandType_COMMAND_TYPE_UPDATE_SETTINGS
	case *fsmv1.EraseSubjectCommand:
		return fsmv1.CommandType_COMMAND_TYPE_ERASE_SUBJECT
	case *fsmv1.PutPrincipalCommand:
		return fsmv1.CommandType_COMMAND_TYPE_PUT_PRINCIPAL
	case *fsmv1.DeletePrincipalCommand:
		return fsmv1.CommandType_COMMAND_TYPE_DELETE_PRINCIPAL
	}
	panic(fmt.Sprintf("no command type for %T", m))
}

func TestWriteFixtures(t *testing.T) {
	if !*writeFixtures {
		t.Skip("run with -write-fixtures to add the current format's fixtures")
	}
	path := filepath.Join("testdata", "commands", fmt.Sprintf("v%d.txt", FormatVersion))
	if _, err := os.Stat(path); err == nil {
		t.Fatalf("%s exists; fixtures of a released format are never rewritten", path)
	}
	var lines []string
	for name, m := range currentFixtures() {
		b, err := Encode(fixtureType(m), m, time.Unix(1700000000, 0))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, name+" "+hex.EncodeToString(b))
	}
	sort.Strings(lines)
	header := fmt.Sprintf("# Commands encoded by format version %d. Never edit or regenerate.\n", FormatVersion)
	if err := os.WriteFile(path, []byte(header+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEveryFormatStillApplies decodes and applies every fixture of every
// format version so far.
func TestEveryFormatStillApplies(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "commands", "v*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < int(FormatVersion) {
		t.Fatalf("found %d fixture files for %d format versions; add testdata/commands/v%d.txt with -write-fixtures", len(files), FormatVersion, FormatVersion)
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
			initCmd, err := Encode(fsmv1.CommandType_COMMAND_TYPE_INIT_CLUSTER,
				&fsmv1.InitClusterCommand{ErasureKey: make([]byte, 32), Purposes: StarterCatalogProto()}, time.Unix(1, 0))
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
				if _, err := Decode(data); err != nil {
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
