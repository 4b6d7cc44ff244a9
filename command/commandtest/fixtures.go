package commandtest

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// Stamp is the time every fixture was encoded with.
var Stamp = time.Unix(1700000000, 0)

// Current are the commands of the current format, one of each kind.
func Current() map[string]proto.Message {
	v := uint64(3) // b_set_out's index when the fixtures are applied in name order after an init
	cv := uint64(6)
	min := uint32(2)
	ret := int64(3600e9)
	return map[string]proto.Message{
		"a_init_cluster": &fsmv1.InitClusterCommand{ErasureKey: []byte("0123456789abcdef0123456789abcdef"), Purposes: command.PurposeDefs(optoutd.StarterCatalog)},
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
		"l_create_override": &fsmv1.CreateOverrideCommand{SubjectId: "u2", Purpose: "analytics", Effect: fsmv1.OverrideEffect_OVERRIDE_EFFECT_ALLOW,
			Reason: "INC-1", Owner: "oncall", ExpiresAtUnixNanos: 1700003600e9, ClientSchemaVersion: 3, Caller: "admin"},
		"m_revoke_override": &fsmv1.EndOverrideCommand{Id: 13, Reason: "done", ClientSchemaVersion: 3, Caller: "admin"},
		"n_expire_override": &fsmv1.EndOverrideCommand{Id: 13, Expire: true},
		"o_record_reports": &fsmv1.RecordReportsCommand{Service: "mailer", Reports: 3, WithoutReceipt: 1, JudgedAt: 12, ClientSchemaVersion: 3, Caller: "svc-web",
			Violations: []*fsmv1.JudgedViolation{{SubjectHash: []byte("0123456789abcdef"), Purpose: "analytics", Kind: 1, Evidence: "processed while opted out",
				ProcessedVersion: 11, DecidingVersion: 9, Report: 2}}},
		"k_rotate_receipt_key": &fsmv1.RotateReceiptKeyCommand{Seed: []byte("fedcba9876543210fedcba9876543210"), OnlyIfNone: true, ClientSchemaVersion: 3, Caller: "admin"},
		"p_set_batch": &fsmv1.SetBatchCommand{IdempotencyKey: "import-1", IdempotencyTtlNanos: 86400e9, ClientSchemaVersion: 4, Caller: "importer",
			Sets: []*fsmv1.SetCommand{
				{SubjectId: "u3", Purpose: "email_marketing", State: fsmv1.State_STATE_OPTED_OUT, Source: "esp-export", Reason: "suppression list"},
				{SubjectId: "u3", Purpose: "analytics", State: fsmv1.State_STATE_OPTED_IN, Source: "esp-export"},
			}},
	}
}

// OtherLimits are entries valid under other releases' request limits.
//
// The request limits (purpose name pattern, description length, principal
// name pattern, field sizes) belong to the API of one release; a later
// release may change them. apply must not re-check them, or two replicas
// running different releases would decide the same entry differently and
// their catalogs (hence their Check answers) would diverge. These entries
// are what a release with other limits could have written; every binary
// must apply them.
func OtherLimits() map[string]proto.Message {
	return map[string]proto.Message{
		"a_define_long_description": &fsmv1.DefinePurposeCommand{Purpose: &fsmv1.PurposeDef{Name: "loyalty",
			Description: strings.Repeat("d", 4000), DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_DENY}},
		"b_define_uppercase_name": &fsmv1.DefinePurposeCommand{Purpose: &fsmv1.PurposeDef{Name: "Loyalty.Points",
			DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_ALLOW}},
		"c_define_long_name": &fsmv1.DefinePurposeCommand{Purpose: &fsmv1.PurposeDef{Name: strings.Repeat("p", 100),
			DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_ALLOW}},
		"d_set_uppercase_purpose": &fsmv1.SetCommand{SubjectId: strings.Repeat("s", 1000), Purpose: "Loyalty.Points",
			State: fsmv1.State_STATE_OPTED_OUT, Source: strings.Repeat("w", 2000), Reason: strings.Repeat("r", 2000)},
		"e_put_principal_odd_name": &fsmv1.PutPrincipalCommand{Name: "ops team+on call/" + strings.Repeat("x", 200),
			Kind: fsmv1.PrincipalKind_PRINCIPAL_KIND_CERTIFICATE, Role: fsmv1.Role_ROLE_READER},
	}
}

// Dir is the directory of the fixture files, command/testdata/commands.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "commands")
}

// CurrentFile is the current format's fixture file.
func CurrentFile() string {
	return filepath.Join(Dir(), fmt.Sprintf("v%d.txt", command.FormatVersion))
}

// OtherLimitsFile is the file of OtherLimits.
func OtherLimitsFile() string { return filepath.Join(Dir(), "other-limits.txt") }

// Entry is one line of a fixture file.
type Entry struct {
	Name string
	Data []byte
}

// Read returns a fixture file's entries in file order. A missing file is
// an error that satisfies os.IsNotExist.
func Read(path string) ([]Entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, ok := strings.Cut(line, " ")
		data, err := hex.DecodeString(hx)
		if !ok || err != nil {
			return nil, fmt.Errorf("%s: bad fixture line %q", path, line)
		}
		out = append(out, Entry{Name: name, Data: data})
	}
	return out, nil
}
