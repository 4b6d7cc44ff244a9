package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// auditHash is the chain link: SHA-256 over the previous hash and every
// field of the entry, with the personal fields (subject, source, reason)
// represented by their HMACs. Erasure blanks those fields but keeps the
// HMACs, so the chain still verifies after it.
func auditHash(e *fsmv1.AuditEntry) []byte {
	var c canon
	c.str("optoutd-audit-v1").bytes(e.PrevHash).u64(e.Version).i64(e.TimeUnixNanos).
		u64(uint64(e.Kind)).bytes(e.SubjectHmac).str(e.Purpose).
		u64(uint64(e.OldState)).u64(uint64(e.NewState)).u64(e.OldVersion).
		bytes(e.SourceHmac).bytes(e.ReasonHmac).str(e.Caller)
	if e.OverrideId != 0 {
		c.u64(e.OverrideId) // only override entries: older hashes stay as they were
	}
	if e.Seq != 0 {
		c.str("seq").u64(uint64(e.Seq)) // only later records of a batch, likewise
	}
	sum := sha256.Sum256(c.b)
	return sum[:]
}

func auditSubjectKey(subjectHMAC []byte, version uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), subjectHMAC...), version)
}

// auditKey is where an audit entry is stored: its version, and after it
// the 4-byte seq when not 0. Keys sort by (version, seq), and the entries
// of every release before batches (all seq 0) keep their 8-byte keys.
func auditKey(version uint64, seq uint32) []byte {
	k := u64(version)
	if seq != 0 {
		k = binary.BigEndian.AppendUint32(k, seq)
	}
	return k
}

// parseAuditKey is auditKey backwards; ok is false for any other length.
func parseAuditKey(k []byte) (version uint64, seq uint32, ok bool) {
	switch len(k) {
	case 8:
		return binary.BigEndian.Uint64(k), 0, true
	case 12:
		return binary.BigEndian.Uint64(k), binary.BigEndian.Uint32(k[8:]), true
	}
	return 0, 0, false
}

// subjectIndexKey is an entry's key in the subject index: the subject's
// HMAC and then the entry's audit key.
func subjectIndexKey(subjectHMAC []byte, version uint64, seq uint32) []byte {
	return append(append([]byte(nil), subjectHMAC...), auditKey(version, seq)...)
}

// appendAudit fills in the HMACs and the chain links of a new entry and
// stores it with its subject index.
func (s *state) appendAudit(a *fsmv1.AuditEntry) error {
	a.SubjectHmac = s.hmacOf("subject", a.SubjectId)
	a.SourceHmac = s.hmacOf("source", a.Source)
	a.ReasonHmac = s.hmacOf("reason", a.Reason)
	meta := s.b(bucketMeta)
	a.PrevHash = append([]byte(nil), meta.Get(keyAuditHead)...)
	a.Hash = auditHash(a)
	if err := put(s.b(bucketAudit), auditKey(a.Version, a.Seq), a); err != nil {
		return err
	}
	// Override entries stay out of the subject index: History and StateAt
	// read it as the subject's own changes.
	if a.OverrideId == 0 {
		if err := s.b(bucketAuditBySubject).Put(subjectIndexKey(a.SubjectHmac, a.Version, a.Seq), []byte(a.Purpose)); err != nil {
			return err
		}
	}
	return meta.Put(keyAuditHead, a.Hash)
}

// compactAudit removes entries older than the retention window (measured
// against the entry's stamp), at most budget of them (but never part of a
// version: the rest of a batch's entries go with the first), and remembers
// the newest removed entry's hash as the anchor the chain now starts from.
func (s *state) compactAudit(stamp int64, budget int) error {
	ret := s.settings.AuditRetentionNanos
	if ret <= 0 {
		return nil
	}
	cutoff := stamp - ret
	ab, idx, meta := s.b(bucketAudit), s.b(bucketAuditBySubject), s.b(bucketMeta)
	c := ab.Cursor()
	var last uint64 // the version of the last entry removed
	for k, v := c.First(); k != nil; k, v = c.First() {
		var a fsmv1.AuditEntry
		if err := proto.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("%w: audit %x: %w", command.ErrMalformed, k, err)
		}
		if a.TimeUnixNanos >= cutoff || budget <= 0 && a.Version != last {
			return nil
		}
		last = a.Version
		if err := idx.Delete(subjectIndexKey(a.SubjectHmac, a.Version, a.Seq)); err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
		if err := meta.Put(keyAuditAnchor, a.Hash); err != nil {
			return err
		}
		if err := meta.Put(keyAuditFloor, u64(a.Version)); err != nil {
			return err
		}
		budget--
	}
	return nil
}

// verifyAudit walks the chain from the anchor (the newest compacted entry)
// to the head and reports the first entry that does not verify: a link
// that does not match its predecessor, a hash that does not match the
// entry, or a personal field that does not match its HMAC.
func verifyAudit(tx *bbolt.Tx) (optoutd.AuditReport, error) {
	var rep optoutd.AuditReport
	meta := tx.Bucket(bucketMeta)
	key := meta.Get(keyErasureKey)
	prev := meta.Get(keyAuditAnchor)
	c := tx.Bucket(bucketAudit).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		ver, seq, ok := parseAuditKey(k)
		if !ok {
			return broken(rep, readU64(k), fmt.Sprintf("entry is stored under a %d-byte key (want 8 or 12)", len(k))), nil
		}
		var a fsmv1.AuditEntry
		if err := proto.Unmarshal(v, &a); err != nil {
			return broken(rep, ver, fmt.Sprintf("entry does not decode: %v", err)), nil
		}
		switch {
		case a.Version != ver || a.Seq != seq:
			return broken(rep, ver, fmt.Sprintf("entry says version %d seq %d but is stored at version %d seq %d", a.Version, a.Seq, ver, seq)), nil
		case !bytes.Equal(a.PrevHash, prev):
			return broken(rep, ver, "link to the previous entry does not match its hash"), nil
		case !bytes.Equal(a.Hash, auditHash(&a)):
			return broken(rep, ver, "entry hash does not match its contents"), nil
		case !a.Erased && !bytes.Equal(a.SubjectHmac, hmacWith(key, "subject", a.SubjectId)):
			return broken(rep, ver, "subject_id does not match its HMAC"), nil
		case !a.Erased && !bytes.Equal(a.SourceHmac, hmacWith(key, "source", a.Source)):
			return broken(rep, ver, "source does not match its HMAC"), nil
		case !a.Erased && !bytes.Equal(a.ReasonHmac, hmacWith(key, "reason", a.Reason)):
			return broken(rep, ver, "reason does not match its HMAC"), nil
		}
		if rep.Entries == 0 {
			rep.FirstVersion = ver
		}
		rep.Entries++
		rep.LastVersion = ver
		prev = a.Hash
	}
	if head := meta.Get(keyAuditHead); !bytes.Equal(head, prev) && rep.Entries > 0 {
		return broken(rep, rep.LastVersion, "the recorded chain head is not the newest entry's hash (entries removed from the end?)"), nil
	}
	return rep, nil
}

func broken(rep optoutd.AuditReport, ver uint64, problem string) optoutd.AuditReport {
	rep.BrokenAt, rep.Problem = ver, problem
	return rep
}

// VerifyAuditFile walks the audit chain of a state file opened read-only:
// a copy of a node's fsm.db, or the file of a stopped node.
func VerifyAuditFile(path string) (optoutd.AuditReport, error) {
	opts := boltOptions(0)
	opts.ReadOnly = true
	db, err := bbolt.Open(path, 0o600, opts)
	if err != nil {
		return optoutd.AuditReport{}, fmt.Errorf("fsm: open %s read-only (is a node still running on it? verify a copy): %w", path, err)
	}
	defer func() { _ = db.Close() }()
	var rep optoutd.AuditReport
	err = db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketAudit) == nil || tx.Bucket(bucketMeta) == nil {
			return fmt.Errorf("fsm: %s holds no audit history (not an optoutd state file?)", path)
		}
		rep, err = verifyAudit(tx)
		return err
	})
	return rep, err
}
