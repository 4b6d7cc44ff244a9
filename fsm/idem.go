package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"

	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// requestHash identifies "the same request" for idempotency: every field
// that shapes the write, in canonical form. Source and reason count: a retry
// that changes the reason is a different request.
func requestHash(c *fsmv1.SetCommand) []byte {
	var cn canon
	cn.str("optoutd-set-v1").str(c.SubjectId).str(c.Purpose).u64(uint64(c.State)).
		str(c.Source).str(c.Reason).boolean(c.ExpectedVersion != nil).u64(c.GetExpectedVersion())
	sum := sha256.Sum256(cn.b)
	return sum[:]
}

// idempotentResult returns the remembered result when key was used for the
// same request, whose hash is hash (nothing is written), a failure when it
// was used for a different one, and nil when the key is new (or expired).
func (s *state) idempotentResult(e entry, key, hash []byte) (*fsmv1.Result, error) {
	var si fsmv1.StoredIdempotency
	ok, err := loadProto(s.b(bucketIdem), key, &si)
	if err != nil || !ok || si.ExpiresAtUnixNanos <= e.cmd.Stamp {
		return nil, err
	}
	if !bytes.Equal(si.RequestHash, hash) {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION,
			"idempotency key was used at version %d for a different request; use a new key for a new request",
			si.GetResult().GetIndex()), nil
	}
	res := proto.Clone(si.Result).(*fsmv1.Result)
	res.Replayed = true
	return res, nil
}

// rememberIdempotent stores a successful result under key until the
// leader-stamped time plus ttl, the window the leader stamped.
func (s *state) rememberIdempotent(e entry, key, hash []byte, ttl int64, res *fsmv1.Result) error {
	// The structural checks refused a non-positive window before anything
	// was written.
	var old fsmv1.StoredIdempotency
	if ok, err := loadProto(s.b(bucketIdem), key, &old); err != nil {
		return err
	} else if ok {
		// An expired entry not yet swept: drop its expiry index entry.
		if err := s.b(bucketIdemExpiry).Delete(expiryKey(old.ExpiresAtUnixNanos, key)); err != nil {
			return err
		}
	}
	exp := e.cmd.Stamp + ttl
	if err := put(s.b(bucketIdem), key, &fsmv1.StoredIdempotency{RequestHash: hash, ExpiresAtUnixNanos: exp, Result: res}); err != nil {
		return err
	}
	return s.b(bucketIdemExpiry).Put(expiryKey(exp, key), nil)
}

func expiryKey(at int64, key []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(at)), key...)
}

// expireIdempotency removes keys whose window ended at or before stamp.
func (s *state) expireIdempotency(stamp int64, budget int) error {
	c := s.b(bucketIdemExpiry).Cursor()
	idem := s.b(bucketIdem)
	for k, _ := c.First(); k != nil && budget > 0; k, _ = c.First() {
		if int64(binary.BigEndian.Uint64(k[:8])) > stamp {
			return nil
		}
		if err := idem.Delete(k[8:]); err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
		budget--
	}
	return nil
}
