package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportRefusesBadFlagsAndFiles: every flag and the file have limits
// and a message naming them, and nothing is sent (no cluster runs here:
// a refused flag never dials).
func TestImportRefusesBadFlagsAndFiles(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "ok.csv")
	if err := os.WriteFile(csv, []byte("subject_id,purpose,state\nu1,analytics,out\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	txt := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(txt, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("subject_id,purpose,colour\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", csv, "--batch-size", "0"}, "--batch-size: 0 is not in 1..1000"},
		{[]string{"import", csv, "--batch-size", "1001"}, "--batch-size: 1001 is not in 1..1000"},
		{[]string{"import", csv, "--concurrency", "65"}, "--concurrency: 65 is not in 1..64"},
		{[]string{"import", csv, "--progress", "sometimes"}, `--progress: "sometimes" is not auto, always or never`},
		{[]string{"import", csv, "--format", "xml"}, `--format: "xml" is not csv or jsonl`},
		{[]string{"import", csv, "--import-id", strings.Repeat("i", 257)}, "--import-id: 257 bytes is over the limit of 256"},
		{[]string{"import", csv, "--source", strings.Repeat("s", 257)}, "--source: 257 bytes is over the limit of 256"},
		{[]string{"import", csv, "--source", "\xff"}, "--source: must be valid UTF-8"},
		{[]string{"import", txt}, `--format: needed, since`},
		{[]string{"import", filepath.Join(dir, "missing.csv")}, "FILE: stat"},
		{[]string{"import", dir, "--format", "csv"}, "is not a regular file"},
		{[]string{"import", "-", "--format", "csv", "--strict"}, "--strict: not with stdin"},
		{[]string{"import", bad}, `line 1: header: unknown column "colour"`},
		{[]string{"import"}, "usage: optoutctl import"},
	} {
		code, _, errOut := runMain(t, append([]string{"--endpoints", "127.0.0.1:1"}, tc.args...)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestExportRefusesBadFlags: each export flag has its limit and message.
func TestExportRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "everything"}, `export: "everything" is not records or history`},
		{[]string{"export", "records", "--format", "xml"}, `--format: "xml" is not jsonl, csv or consent-record`},
		{[]string{"export", "history", "--format", "consent-record"}, "consent-record is for records"},
		{[]string{"export", "records", "--page-size", "0"}, "--page-size: 0 is not in 1..1000"},
		{[]string{"export", "records", "--page-size", "5000"}, "--page-size: 5000 is not in 1..1000"},
		{[]string{"export", "records", "--after-version", "3"}, "--after-version: for history"},
		{[]string{"export", "history", "--purpose", "analytics"}, "--purpose: for records"},
		{[]string{"export", "records", "--controller", "X"}, "--controller: only with --format consent-record"},
		{[]string{"export", "records", "--format", "consent-record", "--policy-url", strings.Repeat("u", 513)}, "--policy-url: 513 bytes"},
		{[]string{"export"}, "usage: optoutctl export"},
	} {
		code, _, errOut := runMain(t, append([]string{"--endpoints", "127.0.0.1:1"}, tc.args...)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, code, errOut, tc.want)
		}
	}
}
