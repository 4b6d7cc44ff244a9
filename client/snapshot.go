package client

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/wire"
)

// SnapshotInfo describes a completed backup download.
type SnapshotInfo struct {
	// Endpoint is the node that streamed it.
	Endpoint string
	// Bytes is how much was written to w.
	Bytes int64
	// Index is the applied index the node reported for the backup (0 if
	// it reported none); the file's own header carries it too.
	Index uint64
}

// Snapshot streams a backup of the whole state (AdminService.Snapshot) into
// w. It holds every write acknowledged before the call. Endpoints are tried
// in turn until one starts streaming; a stream that breaks after bytes
// reached w is not retried (w would hold a prefix): the error is returned
// and the caller must discard what it wrote.
//
// The bytes are the backup file (package snapfile): verify them with
// snapfile.Verify before trusting them.
func (c *Client) Snapshot(ctx context.Context, w io.Writer) (SnapshotInfo, error) {
	var started bool
	return do(ctx, c, func(err error) bool { return !started && retryRead(err) }, func(e endpoint) (SnapshotInfo, error) {
		info := SnapshotInfo{Endpoint: e.url}
		stream, err := e.admin.Snapshot(ctx, connect.NewRequest(&optoutv1.SnapshotRequest{}))
		if err != nil {
			return info, err
		}
		defer stream.Close()
		for stream.Receive() {
			started = true
			n, err := w.Write(stream.Msg().Data)
			info.Bytes += int64(n)
			if err != nil {
				return info, &writeToError{err}
			}
		}
		if err := stream.Err(); err != nil {
			return info, err
		}
		if v := stream.ResponseTrailer().Get(wire.HeaderBackupIndex); v != "" {
			info.Index, _ = strconv.ParseUint(v, 10, 64)
		}
		return info, nil
	})
}

// writeToError marks a failure of the caller's writer, not of the node.
type writeToError struct{ err error }

func (e *writeToError) Error() string { return fmt.Sprintf("writing the backup: %v", e.err) }
func (e *writeToError) Unwrap() error { return e.err }
