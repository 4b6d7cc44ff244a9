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
// commands encoded by binaries of format N, one per line ("name hex"),
// checked in; a line once written is never changed or regenerated.
// -write-fixtures adds to the current FormatVersion's file the fixtures it
// lacks (the file of an earlier format is never touched).
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
		"i_put_principal": &fsmv1.PutPrincipalCommand{Name: "svc-web", Kind: fsmv1.PrincipalKind_PRINCIPAL_KIND_TOKEN, Role: fsmv1.Role_ROLE_WRITER,
			TokenSha256: []byte("0123456789abcdef0123456789abcdef"), CreateOnly: true, ClientSchemaVersion: 2, Caller: "admin"},
		"j_delete_principal": &fsmv1.DeletePrincipalCommand{Name: "svc-web", ClientSchemaVersion: 2, Caller: "admin"},
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
		t.Skip("run with -write-fixtures to add the current format's missing fixtures")
	}
	path := currentFixturesFile()
	have, err := fixtureNames(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var lines []string
	for name, m := range currentFixtures() {
		if have[name] {
			continue
		}
		b, err := Encode(fixtureType(m), m, time.Unix(1700000000, 0))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, name+" "+hex.EncodeToString(b))
	}
	sort.Strings(lines)
	out := strings.Join(lines, "\n") + "\n"
	if len(have) == 0 {
		out = fmt.Sprintf("# Commands encoded by format version %d. Never edit or regenerate.\n", FormatVersion) + out
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

func currentFixturesFile() string {
	return filepath.Join("testdata", "commands", fmt.Sprintf("v%d.txt", FormatVersion))
}

// fixtureNames returns the names of the fixtures in a fixtures file.
func fixtureNames(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if name, _, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			names[name] = true
		}
	}
	return names, nil
}

// TestFixturesCoverEveryCommand: every command type has a fixture of the
// current format, and the checked-in file holds all of them, so a new
// command kind cannot ship without its compatibility fixture.
func TestFixturesCoverEveryCommand(t *testing.T) {
	covered := map[fsmv1.CommandType]bool{}
	for _, m := range currentFixtures() {
		covered[fixtureType(m)] = true
	}
	for v, name := range fsmv1.CommandType_name {
		if ct := fsmv1.CommandType(v); ct != fsmv1.CommandType_COMMAND_TYPE_UNSPECIFIED && !covered[ct] {
			t.Errorf("%s has no fixture in currentFixtures", name)
		}
	}
	have, err := fixtureNames(currentFixturesFile())
	if err != nil {
		t.Fatal(err)
	}
	for name := range currentFixtures() {
		if !have[name] {
			t.Errorf("%s lacks fixture %s; run go test ./fsm -run TestWriteFixtures -write-fixtures", currentFixturesFile(), name)
		}
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
