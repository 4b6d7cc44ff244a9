package snapfile

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// The snapshot stream frames the raw bbolt file so that a truncated or
// corrupted stream is caught before bbolt ever maps it (bbolt trusts its
// file and faults on a short one):
//
//	"OPTSNAP1" | u32 header length | SnapshotHeader | state bytes | SHA-256
//
// The hash covers the header and the state bytes.
var snapshotMagic = []byte("OPTSNAP1")

const (
	snapshotFormat    = 1
	maxSnapshotHeader = 4096
)

// Header is the header of a snapshot stream (SnapshotHeader of the log's
// schema).
type Header = fsmv1.SnapshotHeader

// ErrBadSnapshot wraps every framing, length and checksum failure. Its
// text still says "fsm", where the format was first defined: operators see
// it in 'optoutctl snapshot inspect' and 'optoutd restore'.
var ErrBadSnapshot = errors.New("fsm: bad snapshot")

// Write writes one snapshot stream to w: the framing, hdr with the format
// version set, the state that writeState writes (exactly hdr.StateBytes
// bytes) and the SHA-256 of header and state.
func Write(w io.Writer, hdr *Header, writeState func(io.Writer) (int64, error)) error {
	hdr.FormatVersion = snapshotFormat
	b, err := proto.Marshal(hdr)
	if err != nil {
		return err
	}
	h := sha256.New()
	mw := io.MultiWriter(w, h)
	if _, err := w.Write(snapshotMagic); err != nil {
		return err
	}
	if _, err := w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b)))); err != nil {
		return err
	}
	if _, err := mw.Write(b); err != nil {
		return err
	}
	n, err := writeState(mw)
	if err != nil {
		return err
	}
	if uint64(n) != hdr.StateBytes {
		return fmt.Errorf("wrote %d state bytes, expected %d", n, hdr.StateBytes)
	}
	_, err = w.Write(h.Sum(nil))
	return err
}

// ReadHeader reads and checks the magic and header of a snapshot stream,
// leaving r at the first state byte. h, if not nil, receives the header
// bytes for the checksum.
func ReadHeader(r io.Reader, h hash.Hash) (*Header, error) {
	var pre [12]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("%w: reading magic: %w", ErrBadSnapshot, err)
	}
	if !bytes.Equal(pre[:8], snapshotMagic) {
		return nil, fmt.Errorf("%w: not an optoutd snapshot (magic %q)", ErrBadSnapshot, pre[:8])
	}
	n := binary.BigEndian.Uint32(pre[8:])
	if n == 0 || n > maxSnapshotHeader {
		return nil, fmt.Errorf("%w: header length %d out of range", ErrBadSnapshot, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("%w: reading header: %w", ErrBadSnapshot, err)
	}
	var hdr Header
	if err := proto.Unmarshal(buf, &hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrBadSnapshot, err)
	}
	if hdr.FormatVersion != snapshotFormat {
		return nil, fmt.Errorf("%w: format %d, this binary reads %d", ErrBadSnapshot, hdr.FormatVersion, snapshotFormat)
	}
	if h != nil {
		h.Write(buf)
	}
	return &hdr, nil
}

// PeekHeader reads the magic and header without consuming them, so that
// they still reach whoever reads br next.
func PeekHeader(br *bufio.Reader) (*Header, error) {
	head, err := br.Peek(12)
	if err == nil {
		if n := binary.BigEndian.Uint32(head[8:]); n < 1<<16 {
			head, _ = br.Peek(12 + int(n))
		}
	}
	// ReadHeader reports a short or bad prefix precisely.
	return ReadHeader(bytes.NewReader(head), nil)
}

// ReadToFile checks a whole snapshot stream and writes its state bytes to
// path, fsynced. On error the file may exist and must be removed.
func ReadToFile(r io.Reader, path string) (*Header, error) {
	h := sha256.New()
	hdr, err := ReadHeader(r, h)
	if err != nil {
		return nil, err
	}
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	n, err := io.Copy(io.MultiWriter(fh, h), io.LimitReader(r, int64(hdr.StateBytes)))
	if err != nil {
		return nil, fmt.Errorf("%w: reading state: %w", ErrBadSnapshot, err)
	}
	if uint64(n) != hdr.StateBytes {
		return nil, fmt.Errorf("%w: truncated: %d of %d state bytes", ErrBadSnapshot, n, hdr.StateBytes)
	}
	var sum [sha256.Size]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return nil, fmt.Errorf("%w: truncated: missing checksum: %w", ErrBadSnapshot, err)
	}
	if !bytes.Equal(sum[:], h.Sum(nil)) {
		return nil, fmt.Errorf("%w: SHA-256 mismatch", ErrBadSnapshot)
	}
	if err := fh.Sync(); err != nil {
		return nil, err
	}
	return hdr, fh.Close()
}

// Verify reads a whole snapshot stream and checks its framing, length and
// SHA-256 without keeping the state; it returns the header.
func Verify(r io.Reader) (*Header, error) {
	h := sha256.New()
	hdr, err := ReadHeader(r, h)
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(h, io.LimitReader(r, int64(hdr.StateBytes)))
	if err != nil {
		return hdr, fmt.Errorf("%w: reading state: %w", ErrBadSnapshot, err)
	}
	if uint64(n) != hdr.StateBytes {
		return hdr, fmt.Errorf("%w: truncated: %d of %d state bytes", ErrBadSnapshot, n, hdr.StateBytes)
	}
	var sum [sha256.Size]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return hdr, fmt.Errorf("%w: truncated: missing checksum: %w", ErrBadSnapshot, err)
	}
	if !bytes.Equal(sum[:], h.Sum(nil)) {
		return hdr, fmt.Errorf("%w: SHA-256 mismatch", ErrBadSnapshot)
	}
	if extra, _ := io.Copy(io.Discard, r); extra > 0 {
		return hdr, fmt.Errorf("%w: %d unexpected bytes after the checksum", ErrBadSnapshot, extra)
	}
	return hdr, nil
}
