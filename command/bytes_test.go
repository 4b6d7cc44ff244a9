package command_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	"github.com/optoutd/optoutd/command/commandtest"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

func readFixtures(t *testing.T, path string) map[string][]byte {
	t.Helper()
	entries, err := commandtest.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatalf("%s holds no fixtures", path)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		out[e.Name] = e.Data
	}
	return out
}

// TestCommandFixturesAreByteIdentical pins the log-entry bytes: every entry
// an earlier format wrote decodes, and marshalling what was decoded again
// (with the format version it was written with) gives the same bytes; and
// this binary encodes each current-format fixture to exactly its line.
func TestCommandFixturesAreByteIdentical(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(commandtest.Dir(), "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixture files (%v)", err)
	}
	for _, file := range files {
		for name, data := range readFixtures(t, file) {
			var env fsmv1.Command
			if err := proto.Unmarshal(data, &env); err != nil {
				t.Fatalf("%s %s: envelope: %v", file, name, err)
			}
			d, err := command.Decode(data)
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
		commandtest.CurrentFile():     commandtest.Current(),
		commandtest.OtherLimitsFile(): commandtest.OtherLimits(),
	}
	for file, fixtures := range current {
		lines := readFixtures(t, file)
		for name, m := range fixtures {
			b, err := command.Encode(m, commandtest.Stamp)
			if err != nil {
				t.Fatal(err)
			}
			if file == commandtest.OtherLimitsFile() {
				b = withFormatOf(t, b, lines[name]) // written by an earlier format
			}
			if !bytes.Equal(b, lines[name]) {
				t.Errorf("%s %s: this binary encodes\n %x\nthe fixture holds\n %x", file, name, b, lines[name])
			}
		}
	}
}

// withFormatOf re-marshals the envelope b with the format version of the
// fixture, so a fixture kept across format bumps compares its payload.
func withFormatOf(t *testing.T, b, fixture []byte) []byte {
	t.Helper()
	var env, fix fsmv1.Command
	if err := proto.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(fixture, &fix); err != nil {
		t.Fatal(err)
	}
	env.FormatVersion = fix.FormatVersion
	out, err := proto.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBuildersEncodeLikeTheFixtures: each builder, given the domain
// request a fixture stands for, encodes to the fixture's bytes, so the
// typed builders write exactly what the hand-built commands did.
func TestBuildersEncodeLikeTheFixtures(t *testing.T) {
	lines := readFixtures(t, commandtest.CurrentFile())
	three, six, two := uint64(3), uint64(6), uint32(2)
	hour := time.Hour
	token := []byte("0123456789abcdef0123456789abcdef")
	built := map[string]proto.Message{
		"a_init_cluster": command.InitCluster(token, nil, optoutd.StarterCatalog),
		"b_set_out": command.Set(optoutd.SetRequest{Key: optoutd.Key{SubjectID: "u1", Purpose: "email_marketing"}, State: optoutd.StateOptedOut,
			Source: "web-form", Reason: "unsubscribe link", IdempotencyKey: "evt-1", ClientSchemaVersion: 2, Caller: "svc-web"}, 24*time.Hour),
		"c_set_in_cas": command.Set(optoutd.SetRequest{Key: optoutd.Key{SubjectID: "u1", Purpose: "email_marketing"}, State: optoutd.StateOptedIn,
			ExpectedVersion: &three, ClientSchemaVersion: 2}, 24*time.Hour),
		"d_define_purpose":     command.DefinePurpose(optoutd.Purpose{Name: "loyalty", Description: "points", Default: optoutd.DefaultDeny}, &six, 2, "admin"),
		"e_update_settings":    command.UpdateSettings(&two, &hour, 2, "admin"),
		"f_erase_subject":      command.EraseSubject("u1", "gdpr", 2, "admin"),
		"g_term_start":         command.TermStart("n1"),
		"h_register_node":      command.RegisterNode("n2", "127.0.0.1:7002"),
		"i_put_principal":      command.PutPrincipal(optoutd.Principal{Name: "svc-web", Kind: optoutd.PrincipalToken, Role: optoutd.RoleWriter, TokenSHA256: token}, true, 2, "admin"),
		"j_delete_principal":   command.DeletePrincipal("svc-web", 2, "admin"),
		"k_rotate_receipt_key": command.RotateReceiptKey([]byte("fedcba9876543210fedcba9876543210"), true, 3, "admin"),
		"l_create_override": command.CreateOverride(optoutd.Override{SubjectID: "u2", Purpose: "analytics", Effect: optoutd.OverrideAllow,
			Reason: "INC-1", Owner: "oncall", ExpiresAt: time.Unix(1700003600, 0)}, 3, "admin"),
		"m_revoke_override": command.RevokeOverride(13, "done", 3, "admin"),
		"n_expire_override": command.ExpireOverride(13),
		"o_record_reports": command.RecordReports(optoutd.ReportBatch{Service: "mailer", Reports: 3, WithoutReceipt: 1, JudgedAt: 12,
			Violations: []optoutd.Violation{{SubjectHash: []byte("0123456789abcdef"), Purpose: "analytics", Kind: optoutd.ViolationProcessedWhileOptedOut,
				Evidence: "processed while opted out", ProcessedVersion: 11, DecidingVersion: 9, Report: 2}}}, 3, "svc-web"),
		"p_set_batch": command.SetBatch(optoutd.SetBatchRequest{IdempotencyKey: "import-1", ClientSchemaVersion: 4, Caller: "importer", Sets: []optoutd.SetRequest{
			{Key: optoutd.Key{SubjectID: "u3", Purpose: "email_marketing"}, State: optoutd.StateOptedOut, Source: "esp-export", Reason: "suppression list"},
			{Key: optoutd.Key{SubjectID: "u3", Purpose: "analytics"}, State: optoutd.StateOptedIn, Source: "esp-export"},
		}}, 24*time.Hour),
	}
	for name := range commandtest.Current() {
		m, ok := built[name]
		if !ok {
			t.Errorf("fixture %s has no builder case", name)
			continue
		}
		b, err := command.Encode(m, commandtest.Stamp)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, lines[name]) {
			t.Errorf("%s: the builder encodes\n %x\nthe fixture holds\n %x", name, b, lines[name])
		}
	}
}
