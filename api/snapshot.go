package api

import (
	"context"
	"errors"
	"io"
	"strconv"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/optoutd/optoutd/api/wire"
)

// Backuper is what AdminService.Snapshot needs. store.Store implements it.
// It is separate from Store, like Membership, so a deployment (or a test)
// can leave it out; Snapshot then answers UNIMPLEMENTED.
type Backuper interface {
	// Backup writes a consistent copy of the whole state to w, taken after
	// a linearizable read, and returns the applied index of the copy.
	// Errors are *optoutd.Error, context errors or w's errors.
	Backup(ctx context.Context, w io.Writer) (index uint64, err error)
}

// SnapshotChunkBytes is the size of each SnapshotResponse message but the
// last.
const SnapshotChunkBytes = 256 << 10

var errNoBackups = errors.New("backups are not enabled on this server")

// adminWithBackups adds Snapshot to an AdminService handler.
type adminWithBackups struct {
	*adminServer
	backups Backuper
}

// withBackups serves AdminService with a (or without, when b is nil)
// Snapshot.
func withBackups(s *adminServer, b Backuper) optoutv1connect.AdminServiceHandler {
	return &adminWithBackups{adminServer: s, backups: b}
}

// Snapshot streams a backup in chunks. The concatenated chunks are the
// backup file; a failure after the first chunk ends the stream with an
// error, and the client must discard what it received (the trailing
// SHA-256 would not verify anyway).
func (s *adminWithBackups) Snapshot(ctx context.Context, req *connect.Request[optoutv1.SnapshotRequest], stream *connect.ServerStream[optoutv1.SnapshotResponse]) error {
	if err := noUnknownFields(req.Msg); err != nil {
		return err
	}
	if s.backups == nil {
		return connect.NewError(connect.CodeUnimplemented, errNoBackups)
	}
	cw := &chunkWriter{stream: stream, buf: make([]byte, 0, SnapshotChunkBytes)}
	idx, err := s.backups.Backup(ctx, cw)
	if err == nil {
		err = cw.flush()
	}
	if err != nil {
		if cw.sendErr != nil {
			// The client went away (or its deadline passed): nobody
			// reads this error, but the log interceptor does.
			return connect.NewError(connect.CodeCanceled, cw.sendErr)
		}
		return readError(err)
	}
	stream.ResponseTrailer().Set(wire.HeaderBackupIndex, strconv.FormatUint(idx, 10))
	return nil
}

// chunkWriter turns Backup's writes into SnapshotResponse messages of
// SnapshotChunkBytes. Send marshals the message before it returns, so the
// buffer is reused.
type chunkWriter struct {
	stream  *connect.ServerStream[optoutv1.SnapshotResponse]
	buf     []byte
	sendErr error
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), cap(w.buf)-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	if w.sendErr != nil {
		return w.sendErr
	}
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.stream.Send(&optoutv1.SnapshotResponse{Data: w.buf}); err != nil {
		w.sendErr = err
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

var _ io.Writer = (*chunkWriter)(nil)
