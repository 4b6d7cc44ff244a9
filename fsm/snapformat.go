package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"go.etcd.io/bbolt"
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

// backupInfo adds the fields only backups carry (counting records costs a
// scan, so Raft's own snapshots skip it).
type backupInfo struct{ createdAt int64 }

// ErrBadSnapshot wraps every framing, length and checksum failure.
var ErrBadSnapshot = errors.New("fsm: bad snapshot")

func writeSnapshot(w io.Writer, tx *bbolt.Tx, backup *backupInfo) error {
	h0 := &fsmv1.SnapshotHeader{
		FormatVersion: snapshotFormat,
		AppliedIndex:  readU64(tx.Bucket(bucketMeta).Get(keyAppliedIndex)),
		AppliedTerm:   readU64(tx.Bucket(bucketMeta).Get(keyAppliedTerm)),
		StateBytes:    uint64(tx.Size()),
	}
	if backup != nil {
		h0.Records = uint64(tx.Bucket(bucketRecords).Stats().KeyN)
		h0.CreatedAtUnixNanos = backup.createdAt
	}
	hdr, err := proto.Marshal(h0)
	if err != nil {
		return err
	}
	h := sha256.New()
	mw := io.MultiWriter(w, h)
	if _, err := w.Write(snapshotMagic); err != nil {
		return err
	}
	if _, err := w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(hdr)))); err != nil {
		return err
	}
	if _, err := mw.Write(hdr); err != nil {
		return err
	}
	n, err := tx.WriteTo(mw)
	if err != nil {
		return err
	}
	if n != tx.Size() {
		return fmt.Errorf("wrote %d state bytes, expected %d", n, tx.Size())
	}
	_, err = w.Write(h.Sum(nil))
	return err
}

// ReadSnapshotHeader reads and checks the magic and header of a snapshot
// stream, leaving r at the first state byte. h, if not nil, receives the
// header bytes for the checksum.
func ReadSnapshotHeader(r io.Reader, h hash.Hash) (*fsmv1.SnapshotHeader, error) {
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
	var hdr fsmv1.SnapshotHeader
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

// readSnapshotToFile checks a whole snapshot stream and writes its state
// bytes to path, fsynced. On error the file may exist and must be removed.
func readSnapshotToFile(r io.Reader, path string) (*fsmv1.SnapshotHeader, error) {
	h := sha256.New()
	hdr, err := ReadSnapshotHeader(r, h)
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

// VerifySnapshot reads a whole snapshot stream and checks its framing,
// length and SHA-256 without keeping the state; it returns the header.
func VerifySnapshot(r io.Reader) (*fsmv1.SnapshotHeader, error) {
	h := sha256.New()
	hdr, err := ReadSnapshotHeader(r, h)
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
