package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/optoutd/optoutd/api"
	"github.com/optoutd/optoutd/fsm"
)

// backupBytes is a valid (empty-state) backup made by the real writer.
func backupBytes(t *testing.T) []byte {
	t.Helper()
	f, err := fsm.Open(fsm.Config{Path: filepath.Join(t.TempDir(), "fsm.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := f.WriteBackup(&buf, time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type backupFunc func(ctx context.Context, w io.Writer) (uint64, error)

func (f backupFunc) Backup(ctx context.Context, w io.Writer) (uint64, error) { return f(ctx, w) }

// serveBackups serves the real API with b as its Backuper, over HTTP/1.1
// and h2c like optoutd.
func serveBackups(t *testing.T, b api.Backuper) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(ln.Addr().String(), api.NewHandler(&fakeStore{}, api.Options{Backups: b}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func serving(data []byte) api.Backuper {
	return backupFunc(func(_ context.Context, w io.Writer) (uint64, error) {
		_, err := w.Write(data)
		return 7, err
	})
}

func files(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}

// TestSnapshotSaveAndInspect: save writes a verified FILE and prints its
// header; inspect prints the same header from the file.
func TestSnapshotSaveAndInspect(t *testing.T) {
	good := backupBytes(t)
	ep := serveBackups(t, serving(good))
	dir := t.TempDir()
	file := filepath.Join(dir, "b.snap")
	out, err := run(t, "--endpoints", ep, "snapshot", "save", file)
	if err != nil {
		t.Fatal(describe(err))
	}
	var saved, inspected snapshotInfo
	if err := json.Unmarshal([]byte(out), &saved); err != nil {
		t.Fatalf("save printed %q: %v", out, err)
	}
	if saved.Checksum != "ok" || saved.SizeBytes != int64(len(good)) || saved.FormatVersion != 1 || saved.CreatedAt != "2025-03-14T15:09:26Z" || saved.Endpoint == "" {
		t.Fatalf("save printed %+v", saved)
	}
	if got, _ := os.ReadFile(file); !bytes.Equal(got, good) {
		t.Fatal("FILE differs from the stream")
	}
	if got := files(t, dir); got != "b.snap" {
		t.Fatalf("dir holds %s", got)
	}
	// --gzip changes the wire, not the file.
	if _, err := run(t, "--endpoints", ep, "snapshot", "save", "--gzip", file); err != nil {
		t.Fatal(describe(err))
	}
	if got, _ := os.ReadFile(file); !bytes.Equal(got, good) {
		t.Fatal("FILE saved with --gzip differs from the stream")
	}
	out, err = run(t, "snapshot", "inspect", file)
	if err != nil {
		t.Fatal(describe(err))
	}
	if err := json.Unmarshal([]byte(out), &inspected); err != nil {
		t.Fatal(err)
	}
	saved.Endpoint = ""
	if inspected != saved {
		t.Fatalf("inspect %+v, save %+v", inspected, saved)
	}
}

// TestSnapshotSaveRefusesBadDownloads: a corrupt, truncated, failed or
// stalled download never replaces FILE and leaves no FILE.tmp.
func TestSnapshotSaveRefusesBadDownloads(t *testing.T) {
	good := backupBytes(t)
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 1
	cases := []struct {
		name  string
		b     api.Backuper
		flags []string
		want  string
	}{
		{"corrupt", serving(corrupt), nil, "SHA-256 mismatch"},
		{"truncated", serving(good[:len(good)-5]), nil, "truncated"},
		{"server fails midway", backupFunc(func(_ context.Context, w io.Writer) (uint64, error) {
			_, _ = w.Write(good)
			_, _ = w.Write(make([]byte, api.SnapshotChunkBytes))
			return 0, io.ErrUnexpectedEOF
		}), nil, "internal"},
		{"stalled", backupFunc(func(ctx context.Context, _ io.Writer) (uint64, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}), []string{"--timeout", "300ms"}, "no backup data arrived for --timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "b.snap")
			if err := os.WriteFile(file, []byte("the previous backup"), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append(append([]string{"--endpoints", serveBackups(t, tc.b)}, tc.flags...), "snapshot", "save", file)
			_, err := run(t, args...)
			if err == nil || !strings.Contains(describe(err), tc.want) {
				t.Fatalf("save: %v, want %q", err, tc.want)
			}
			if got := files(t, dir); got != "b.snap" {
				t.Fatalf("dir holds %s", got)
			}
			if b, _ := os.ReadFile(file); string(b) != "the previous backup" {
				t.Fatal("FILE was replaced")
			}
		})
	}
}

// TestSnapshotInspectRefusesBadFiles: every damaged file fails with a
// message that says not to restore from it; a missing file or argument is
// a plain error.
func TestSnapshotInspectRefusesBadFiles(t *testing.T) {
	good := backupBytes(t)
	dir := t.TempDir()
	for name, b := range map[string][]byte{
		"empty": nil, "header only": good[:30], "truncated": good[:len(good)-1],
		"padded": append(bytes.Clone(good), 'x'), "wrong magic": append([]byte("NOTSNAP1"), good[8:]...),
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			if err := os.WriteFile(file, b, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := run(t, "snapshot", "inspect", file)
			if err == nil || !strings.Contains(err.Error(), "do not restore from it") || out != "" {
				t.Fatalf("inspect: %q, %v", out, err)
			}
		})
	}
	if _, err := run(t, "snapshot", "inspect", filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := run(t, "snapshot", "inspect"); err == nil || !strings.Contains(err.Error(), "usage: optoutctl snapshot inspect FILE") {
		t.Fatalf("no argument: %v", err)
	}
	if _, err := run(t, "snapshot", "save"); err == nil || !strings.Contains(err.Error(), "usage: optoutctl snapshot save FILE") {
		t.Fatalf("no argument: %v", err)
	}
}
