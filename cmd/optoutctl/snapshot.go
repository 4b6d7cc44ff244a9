package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/internal/durable"
	"github.com/optoutd/optoutd/snapfile"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func (m *Main) snapshotCmd() *ffcli.Command {
	saveFS := flag.NewFlagSet("optoutctl snapshot save", flag.ContinueOnError)
	gzip := saveFS.Bool("gzip", false, "ask the node to gzip the stream: less traffic on a slow link, more CPU on the node")
	const saveUsage = "optoutctl snapshot save FILE [--gzip]"
	save := &ffcli.Command{
		Name: "save", ShortUsage: saveUsage, FlagSet: saveFS,
		ShortHelp: "download a consistent backup of the whole cluster state to FILE",
		LongHelp: "Streams AdminService.Snapshot into FILE.tmp, verifies it (framing, length, SHA-256), fsyncs it and renames it to FILE, " +
			"so FILE is either a complete, verified backup or untouched. The backup holds every write acknowledged before the command started. " +
			"--timeout bounds the wait for each chunk, not the whole download.",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(saveFS, 1, saveUsage, a)
			if err != nil {
				return err
			}
			return m.saveSnapshot(ctx, a[0], *gzip)
		},
	}
	inspectFS := flag.NewFlagSet("optoutctl snapshot inspect", flag.ContinueOnError)
	const inspectUsage = "optoutctl snapshot inspect FILE"
	inspect := &ffcli.Command{
		Name: "inspect", ShortUsage: inspectUsage, FlagSet: inspectFS,
		ShortHelp: "print a backup file's header and check its SHA-256 (exit 1 if it does not verify)",
		Exec: func(_ context.Context, a []string) error {
			a, err := positional(inspectFS, 1, inspectUsage, a)
			if err != nil {
				return err
			}
			info, err := inspectSnapshot(a[0])
			if err != nil {
				return err
			}
			return m.printSnapshot(info)
		},
	}
	return group("snapshot", "optoutctl snapshot <save|inspect> FILE", "back up the cluster, check a backup file", save, inspect)
}

// snapshotInfo is what save and inspect print.
type snapshotInfo struct {
	File          string `json:"file"`
	SizeBytes     int64  `json:"sizeBytes"`
	FormatVersion uint32 `json:"formatVersion"`
	AppliedIndex  uint64 `json:"appliedIndex"`
	AppliedTerm   uint64 `json:"appliedTerm"`
	Records       uint64 `json:"records"`
	StateBytes    uint64 `json:"stateBytes"`
	CreatedAt     string `json:"createdAt"`
	Checksum      string `json:"checksum"`
	Endpoint      string `json:"endpoint,omitempty"`
}

func newSnapshotInfo(path string, size int64, h *snapfile.Header) snapshotInfo {
	created := ""
	if h.CreatedAtUnixNanos != 0 {
		created = time.Unix(0, h.CreatedAtUnixNanos).UTC().Format(time.RFC3339Nano)
	}
	return snapshotInfo{
		File: path, SizeBytes: size, FormatVersion: h.FormatVersion, AppliedIndex: h.AppliedIndex,
		AppliedTerm: h.AppliedTerm, Records: h.Records, StateBytes: h.StateBytes, CreatedAt: created, Checksum: "ok",
	}
}

func (m *Main) printSnapshot(info snapshotInfo) error { return m.emit(info) }

// verifyFile checks a whole backup file and returns its header and size.
func verifyFile(path string) (*snapfile.Header, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	h, err := snapfile.Verify(bufio.NewReaderSize(f, 1<<20))
	return h, st.Size(), err
}

// errBadBackup says what to do about a file that does not verify.
func errBadBackup(path string, h *snapfile.Header, err error) error {
	at := ""
	if h != nil {
		at = fmt.Sprintf(" (header: applied index %d, %d state bytes)", h.AppliedIndex, h.StateBytes)
	}
	return fmt.Errorf("%s is not a valid backup%s: %w; do not restore from it", path, at, err)
}

func inspectSnapshot(path string) (snapshotInfo, error) {
	h, size, err := verifyFile(path)
	if err != nil {
		if errors.Is(err, snapfile.ErrBadSnapshot) {
			return snapshotInfo{}, errBadBackup(path, h, err)
		}
		return snapshotInfo{}, err
	}
	return newSnapshotInfo(path, size, h), nil
}

// saveSnapshot downloads into path+".tmp", verifies, fsyncs and renames.
// On any failure the temporary file is removed and path is untouched.
func (m *Main) saveSnapshot(ctx context.Context, path string, gzip bool) (err error) {
	opts, err := m.security()
	if err != nil {
		return err
	}
	if !gzip {
		// Connect clients accept gzip by default, and the node compresses
		// every chunk then: CPU a node on a LAN needs more than bandwidth.
		opts = append(opts, client.WithConnectOptions(connect.WithAcceptCompression("gzip", nil, nil)))
	}
	c, err := client.New(strings.Split(m.endpoints, ","), opts...)
	if err != nil {
		return fmt.Errorf("--endpoints: %w", err)
	}
	defer c.Close()
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pw := &progressWriter{w: bufio.NewWriterSize(f, 1<<20)}
	stopWatch := watchProgress(pw, m.timeout, cancel)
	info, err := c.Snapshot(ctx, pw)
	stopWatch()
	if err != nil && errors.Is(context.Cause(ctx), errStalled) {
		// Not wrapped: the connect error would only say "canceled".
		err = fmt.Errorf("%w (%s after %d bytes; raise --timeout for a node that is slow to start streaming)", errStalled, m.timeout, pw.n.Load())
	}
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := pw.w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		f = nil
		return err
	}
	f = nil
	h, size, err := verifyFile(tmp)
	if err != nil {
		return errBadBackup(tmp, h, fmt.Errorf("the download from %s does not verify: %w", info.Endpoint, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := durable.SyncDir(filepath.Dir(path)); err != nil {
		return err
	}
	out := newSnapshotInfo(path, size, h)
	out.Endpoint = info.Endpoint
	return m.printSnapshot(out)
}

var errStalled = errors.New("no backup data arrived for --timeout")

// progressWriter counts bytes so a watchdog can tell a slow download from
// a stalled one.
type progressWriter struct {
	w *bufio.Writer
	n atomic.Int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n.Add(int64(n))
	return n, err
}

var _ io.Writer = (*progressWriter)(nil)

// watchProgress cancels with errStalled when no byte arrives for idle (the
// first one included: the node first confirms a linearizable read and
// counts the records).
func watchProgress(p *progressWriter, idle time.Duration, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(max(min(idle/4, time.Second), 10*time.Millisecond))
		defer tick.Stop()
		last, lastAt := p.n.Load(), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				if n := p.n.Load(); n != last {
					last, lastAt = n, now
				} else if now.Sub(lastAt) >= idle {
					cancel(errStalled)
					return
				}
			}
		}
	}()
	return func() { close(done) }
}
