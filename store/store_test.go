package store_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api"
	"github.com/optoutd/optoutd/cluster/clustertest"
	"github.com/optoutd/optoutd/snapfile"
	"github.com/optoutd/optoutd/store"
)

var (
	_ api.Store        = (*store.Store)(nil)
	_ api.LeaderHinter = (*store.Store)(nil)
	_ api.Principals   = (*store.Store)(nil)
	_ api.Backuper     = (*store.Store)(nil)
)

// TestWritesReadsAndBackupThroughTheStore: a write comes back as the domain
// result, a rule the state machine enforces comes back as the domain error
// with its detail, a principal is stored and listed, and a backup is a
// valid snapshot file at or after the write.
func TestWritesReadsAndBackupThroughTheStore(t *testing.T) {
	c := clustertest.New(t, 1)
	s := store.New(c.WaitLeader(10 * time.Second))
	ctx := clustertest.Ctx(t, 30*time.Second)
	k := optoutd.Key{SubjectID: "u1", Purpose: "email_marketing"}

	res, err := s.Set(ctx, optoutd.SetRequest{Key: k, State: optoutd.StateOptedOut, Source: "test"})
	if err != nil || res.Record.Version == 0 || res.Record.State != optoutd.StateOptedOut || res.Record.Key != k {
		t.Fatalf("Set = %+v, %v", res, err)
	}
	stale := res.Record.Version - 1
	_, err = s.Set(ctx, optoutd.SetRequest{Key: k, State: optoutd.StateOptedIn, ExpectedVersion: &stale})
	var de *optoutd.Error
	if !errors.As(err, &de) || de.Code != optoutd.VersionMismatch || de.CurrentVersion != res.Record.Version {
		t.Fatalf("stale compare-and-set = %v, want version_mismatch at %d", err, res.Record.Version)
	}
	if _, err := s.Set(ctx, optoutd.SetRequest{Key: optoutd.Key{SubjectID: "u1", Purpose: "nope"}, State: optoutd.StateOptedOut}); optoutd.ErrorCode(err) != optoutd.NotFound {
		t.Fatalf("Set of an undefined purpose = %v, want not_found", err)
	}
	var got optoutd.Record
	if _, err := s.Read(ctx, func(v optoutd.View) (err error) { got, _, err = v.Get(k); return err }); err != nil || got.Version != res.Record.Version {
		t.Fatalf("Read = %+v, %v", got, err)
	}

	p := optoutd.Principal{Name: "svc", Kind: optoutd.PrincipalCertificate, Role: optoutd.RoleReader}
	if err := s.PutPrincipal(ctx, p, true, 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPrincipal(ctx, p, true, 0, ""); optoutd.ErrorCode(err) != optoutd.FailedPrecondition {
		t.Fatalf("creating it again = %v, want failed_precondition", err)
	}
	ps, err := s.ListPrincipals(ctx)
	if err != nil || len(ps) != 1 || ps[0].Name != "svc" || ps[0].Role != optoutd.RoleReader {
		t.Fatalf("ListPrincipals = %+v, %v", ps, err)
	}

	var buf bytes.Buffer
	idx, err := s.Backup(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := snapfile.Verify(bytes.NewReader(buf.Bytes()))
	if err != nil || hdr.AppliedIndex != idx || idx < res.Record.Version || hdr.Records != 1 {
		t.Fatalf("backup at %d: header %v, %v", idx, hdr, err)
	}
}
