package fsm

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
)

// Receipt keys: every key ever added stays in the bucket, so a receipt
// signed by a rotated-out key still verifies. Ids count up from 1.

func receiptKeyID(id uint32) []byte { return binary.BigEndian.AppendUint32(nil, id) }

func (s *state) applyRotateReceiptKey(e entry, c *fsmv1.RotateReceiptKeyCommand) (*fsmv1.Result, error) {
	if len(c.Seed) != ed25519.SeedSize {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "receipt key seed must be %d bytes, got %d", ed25519.SeedSize, len(c.Seed)), nil
	}
	if r := s.schemaTooOld(e, c.ClientSchemaVersion); r != nil {
		return r, nil
	}
	if c.OnlyIfNone && s.settings.ReceiptKeyId != 0 {
		return &fsmv1.Result{Index: e.index, ReceiptKeyId: s.settings.ReceiptKeyId}, nil
	}
	id := s.settings.ReceiptKeyId + 1
	k := &fsmv1.StoredReceiptKey{Seed: c.Seed, CreatedAtUnixNanos: e.cmd.Stamp, Version: e.index}
	if err := put(s.b(bucketReceiptKeys), receiptKeyID(id), k); err != nil {
		return nil, err
	}
	s.settings.ReceiptKeyId = id
	if err := s.saveSettings(); err != nil {
		return nil, err
	}
	return &fsmv1.Result{Index: e.index, ReceiptKeyId: id}, nil
}

// ReceiptKeys returns every receipt key, newest first.
func (r *Reader) ReceiptKeys() ([]optoutd.ReceiptKey, error) {
	var out []optoutd.ReceiptKey
	c := r.tx.Bucket(bucketReceiptKeys).Cursor()
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		rk, err := r.receiptKey(k)
		if err != nil {
			return nil, err
		}
		out = append(out, rk)
	}
	return out, nil
}

// ReceiptKey returns one key, and false when the cluster never had it.
func (r *Reader) ReceiptKey(id uint32) (optoutd.ReceiptKey, bool, error) {
	k := receiptKeyID(id)
	if r.tx.Bucket(bucketReceiptKeys).Get(k) == nil {
		return optoutd.ReceiptKey{}, false, nil
	}
	rk, err := r.receiptKey(k)
	return rk, err == nil, err
}

// CurrentReceiptKey returns the key receipts are signed with now.
func (r *Reader) CurrentReceiptKey() (optoutd.ReceiptKey, bool, error) {
	if r.st.settings.ReceiptKeyId == 0 {
		return optoutd.ReceiptKey{}, false, nil
	}
	return r.ReceiptKey(r.st.settings.ReceiptKeyId)
}

func (r *Reader) receiptKey(k []byte) (optoutd.ReceiptKey, error) {
	if len(k) != 4 {
		return optoutd.ReceiptKey{}, fmt.Errorf("%w: receipt key id %x", command.ErrMalformed, k)
	}
	var sk fsmv1.StoredReceiptKey
	if _, err := loadProto(r.tx.Bucket(bucketReceiptKeys), k, &sk); err != nil {
		return optoutd.ReceiptKey{}, err
	}
	id := binary.BigEndian.Uint32(k)
	return optoutd.ReceiptKey{
		ID: id, Seed: sk.Seed, CreatedAt: command.UnixNanos(sk.CreatedAtUnixNanos),
		Version: sk.Version, Current: id == r.st.settings.ReceiptKeyId,
	}, nil
}

// ReceiptSubjectHash is the keyed hash a receipt carries instead of the
// subject id: HMAC-SHA256 under the cluster's secret, in its own domain
// (label "receipt-subject"), cut to optoutd.ReceiptSubjectHashBytes.
func (r *Reader) ReceiptSubjectHash(subject string) []byte {
	return r.st.hmacOf("receipt-subject", subject)[:optoutd.ReceiptSubjectHashBytes]
}
