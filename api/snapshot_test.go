package api_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/optoutd/optoutd/api/wire"
)

// fakeBackuper writes data in writes of the given sizes, then returns err.
type fakeBackuper struct {
	data   []byte
	writes []int
	index  uint64
	err    error
}

func (b *fakeBackuper) Backup(_ context.Context, w io.Writer) (uint64, error) {
	rest := b.data
	for i := 0; len(rest) > 0; i++ {
		n := min(len(rest), b.writes[i%len(b.writes)])
		if _, err := w.Write(rest[:n]); err != nil {
			return 0, err
		}
		rest = rest[n:]
	}
	return b.index, b.err
}

func snapshotAll(t *testing.T, c optoutv1connect.AdminServiceClient) ([][]byte, *connect.ServerStreamForClient[optoutv1.SnapshotResponse], error) {
	t.Helper()
	stream, err := c.Snapshot(context.Background(), connect.NewRequest(&optoutv1.SnapshotRequest{}))
	if err != nil {
		return nil, nil, err
	}
	var chunks [][]byte
	for stream.Receive() {
		chunks = append(chunks, bytes.Clone(stream.Msg().Data))
	}
	return chunks, stream, stream.Err()
}

// TestSnapshotStreamsChunks: over every protocol, the backup arrives in
// chunks of at most SnapshotChunkBytes (writes of any size are re-cut),
// concatenating to exactly what the Backuper wrote, with the index in the
// trailer.
func TestSnapshotStreamsChunks(t *testing.T) {
	data := make([]byte, 2*api.SnapshotChunkBytes+12345)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	b := &fakeBackuper{data: data, writes: []int{1, 7000, 300000, 4096}, index: 4242}
	s := serve(t, &fakeStore{}, api.Options{Backups: b})
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			c := optoutv1connect.NewAdminServiceClient(p.httpClient(t), s.URL, p.opts...)
			chunks, stream, err := snapshotAll(t, c)
			if err != nil {
				t.Fatal(err)
			}
			if len(chunks) != 3 {
				t.Errorf("%d chunks, want 3", len(chunks))
			}
			for i, ch := range chunks {
				if len(ch) > api.SnapshotChunkBytes || (i < len(chunks)-1 && len(ch) != api.SnapshotChunkBytes) {
					t.Errorf("chunk %d has %d bytes", i, len(ch))
				}
			}
			if !bytes.Equal(bytes.Join(chunks, nil), data) {
				t.Fatal("the chunks do not concatenate to the backup")
			}
			if got := stream.ResponseTrailer().Get(wire.HeaderBackupIndex); got != "4242" {
				t.Errorf("trailer %s = %q", wire.HeaderBackupIndex, got)
			}
		})
	}
}

// TestSnapshotErrors: no Backuper is UNIMPLEMENTED; a failure before any
// byte maps through the one error table; a failure after bytes were sent
// ends the stream with an error, so a client never takes a prefix for a
// backup.
func TestSnapshotErrors(t *testing.T) {
	cases := []struct {
		name   string
		b      api.Backuper
		code   connect.Code
		chunks int
	}{
		{"no backuper", nil, connect.CodeUnimplemented, 0},
		{"no quorum", &fakeBackuper{err: optoutd.Errorf(optoutd.Unavailable, "no leader")}, connect.CodeUnavailable, 0},
		{"halted", &fakeBackuper{err: optoutd.Errorf(optoutd.Halted, "halted")}, connect.CodeUnavailable, 0},
		{"fails midway", &fakeBackuper{data: make([]byte, api.SnapshotChunkBytes+1), writes: []int{1 << 20}, err: optoutd.Errorf(optoutd.Internal, "disk")}, connect.CodeInternal, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := serve(t, &fakeStore{}, api.Options{Backups: tc.b})
			c := optoutv1connect.NewAdminServiceClient(h2cClient(t), s.URL)
			chunks, _, err := snapshotAll(t, c)
			if connect.CodeOf(err) != tc.code {
				t.Fatalf("err %v, want %v", err, tc.code)
			}
			if len(chunks) != tc.chunks {
				t.Fatalf("%d chunks before the error, want %d", len(chunks), tc.chunks)
			}
		})
	}
}
