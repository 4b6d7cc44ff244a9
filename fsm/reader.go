package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// Reader reads one consistent version of the state. It is valid only inside
// the View callback that produced it. It implements optoutd.View.
type Reader struct {
	tx *bbolt.Tx
	st *state
}

var _ optoutd.View = (*Reader)(nil)

func newReader(tx *bbolt.Tx) (*Reader, error) {
	st, err := newState(tx)
	if err != nil {
		return nil, err
	}
	return &Reader{tx: tx, st: st}, nil
}

// AppliedIndex is the log index this Reader's state reflects.
func (r *Reader) AppliedIndex() uint64 {
	return readU64(r.tx.Bucket(bucketMeta).Get(keyAppliedIndex))
}

// Get returns the record for k, and false when there is none.
func (r *Reader) Get(k optoutd.Key) (optoutd.Record, bool, error) {
	sr, err := loadRecord(r.tx.Bucket(bucketRecords), recordKey(k.SubjectID, k.Purpose))
	if err != nil || sr == nil {
		return optoutd.Record{Key: k}, false, err
	}
	return command.RecordFromStored(k, sr), true, nil
}

// Check decides k under the catalog and the deny-wins rule (see
// optoutd.Decide).
func (r *Reader) Check(k optoutd.Key) (optoutd.CheckResult, error) {
	p, err := r.Purpose(k.Purpose)
	if err != nil {
		return optoutd.CheckResult{}, err
	}
	all, erased, err := r.allRecord(k.SubjectID)
	if err != nil {
		return optoutd.CheckResult{}, err
	}
	rec := all
	if k.Purpose != allPurposes {
		if rec, _, err = r.Get(k); err != nil {
			return optoutd.CheckResult{}, err
		}
	}
	return optoutd.Decide(p, all, erased, rec), nil
}

// allRecord returns the subject's "all" record, or its erasure suppression.
func (r *Reader) allRecord(subject string) (optoutd.Record, bool, error) {
	k := optoutd.Key{SubjectID: subject, Purpose: allPurposes}
	rec, ok, err := r.Get(k)
	if err != nil || ok {
		return rec, false, err
	}
	if k, _ := r.tx.Bucket(bucketErased).Cursor().First(); k == nil {
		return rec, false, nil // no subject was ever erased: skip the HMAC
	}
	sup, err := r.st.erasedSuppression(subject)
	if err != nil || sup == nil {
		return rec, false, err
	}
	return command.RecordFromStored(k, sup), true, nil
}

// Purpose returns one definition; "all" is implicit and allows by default.
func (r *Reader) Purpose(name string) (optoutd.Purpose, error) {
	if name == allPurposes {
		return optoutd.Purpose{Name: allPurposes, Default: optoutd.DefaultAllow, Description: "every purpose of the subject"}, nil
	}
	sp, ok, err := r.st.purpose(name)
	if err != nil {
		return optoutd.Purpose{}, err
	}
	if !ok {
		return optoutd.Purpose{}, optoutd.Errorf(optoutd.NotFound, "purpose %q is not defined", name)
	}
	return command.PurposeFromStored(sp), nil
}

// Purposes lists the catalog in name order.
func (r *Reader) Purposes() ([]optoutd.Purpose, error) {
	var out []optoutd.Purpose
	err := r.tx.Bucket(bucketPurposes).ForEach(func(k, v []byte) error {
		var sp fsmv1.StoredPurpose
		if err := proto.Unmarshal(v, &sp); err != nil {
			return fmt.Errorf("%w: purpose %q: %w", command.ErrMalformed, k, err)
		}
		out = append(out, command.PurposeFromStored(&sp))
		return nil
	})
	return out, err
}

// Settings returns the replicated settings.
func (r *Reader) Settings() (optoutd.Settings, error) {
	s := r.st.settings
	return optoutd.Settings{
		Initialized:           s.Initialized,
		MinSchemaVersion:      s.MinSchemaVersion,
		AuditRetention:        time.Duration(s.AuditRetentionNanos),
		CatalogVersion:        s.CatalogVersion,
		AuditCompactedThrough: readU64(r.tx.Bucket(bucketMeta).Get(keyAuditFloor)),
		MaxOverride:           command.MaxOverrideOf(s),
		OverridesExpired:      s.OverridesExpired,
	}, nil
}

// History returns a subject's entries, newest first, with version <
// before (0: no bound). A page holds at least limit entries if there are
// that many, and never ends inside a version: the rest of a batch's entries
// for the subject come with it, so paging by version skips nothing.
func (r *Reader) History(subject, purpose string, before uint64, limit int) ([]optoutd.AuditEntry, error) {
	h := r.st.hmacOf("subject", subject)
	var out []optoutd.AuditEntry
	c := r.tx.Bucket(bucketAuditBySubject).Cursor()
	if before == 0 {
		before = ^uint64(0)
	}
	// Every key at or after the seek is at version >= before; Prev also
	// finds the last key when Seek ran off the end.
	c.Seek(subjectIndexKey(h, before, 0))
	for k, v := c.Prev(); k != nil && bytes.HasPrefix(k, h); k, v = c.Prev() {
		ver, _, ok := parseAuditKey(k[len(h):])
		if !ok {
			return nil, fmt.Errorf("%w: audit index key %x", command.ErrMalformed, k)
		}
		if len(out) >= limit && ver != out[len(out)-1].Version {
			break
		}
		if purpose != "" && string(v) != purpose {
			continue
		}
		a, err := r.auditEntry(k[len(h):])
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// auditEntry loads the entry stored under akey (see auditKey).
func (r *Reader) auditEntry(akey []byte) (optoutd.AuditEntry, error) {
	var a fsmv1.AuditEntry
	ok, err := loadProto(r.tx.Bucket(bucketAudit), akey, &a)
	if err != nil {
		return optoutd.AuditEntry{}, err
	}
	if !ok {
		ver, seq, _ := parseAuditKey(akey)
		return optoutd.AuditEntry{}, fmt.Errorf("%w: audit index names missing entry %d seq %d", command.ErrMalformed, ver, seq)
	}
	return command.AuditFromStored(&a), nil
}

// StateAt answers for k as of version asOf, from the history and the
// catalog's history. It fails with NotFound if the purpose was not defined
// at asOf, and with Invalid if asOf is before retained history.
func (r *Reader) StateAt(k optoutd.Key, asOf uint64) (optoutd.StateAtResult, error) {
	if floor := readU64(r.tx.Bucket(bucketMeta).Get(keyAuditFloor)); asOf <= floor && floor > 0 {
		return optoutd.StateAtResult{}, optoutd.Errorf(optoutd.Invalid, "version %d is before retained history (entries through %d were removed by retention)", asOf, floor)
	}
	p, err := r.purposeAt(k.Purpose, asOf)
	if err != nil {
		return optoutd.StateAtResult{}, err
	}
	all, erased, err := r.lastChangeAt(k.SubjectID, allPurposes, asOf)
	if err != nil {
		return optoutd.StateAtResult{}, err
	}
	rec := all
	if k.Purpose != allPurposes {
		if rec, _, err = r.lastChangeAt(k.SubjectID, k.Purpose, asOf); err != nil {
			return optoutd.StateAtResult{}, err
		}
	}
	rec.Key, all.Key = k, optoutd.Key{SubjectID: k.SubjectID, Purpose: allPurposes}
	return optoutd.StateAtResult{AsOf: asOf, Check: optoutd.Decide(p, all, erased, rec), Record: rec}, nil
}

// lastChangeAt is the state of (subject, purpose) after the newest change
// at or before asOf; erased reports that change was an erasure.
func (r *Reader) lastChangeAt(subject, purpose string, asOf uint64) (optoutd.Record, bool, error) {
	entries, err := r.History(subject, purpose, asOf+1, 1)
	if err != nil || len(entries) == 0 {
		return optoutd.Record{}, false, err
	}
	a := entries[0]
	return optoutd.Record{State: a.NewState, Version: a.Version, UpdatedAt: a.Time, Source: a.Source, Reason: a.Reason}, a.Kind == optoutd.AuditErase, nil
}

func (r *Reader) purposeAt(name string, asOf uint64) (optoutd.Purpose, error) {
	if name == allPurposes {
		return r.Purpose(name)
	}
	c := r.tx.Bucket(bucketPurposeHistory).Cursor()
	prefix := append([]byte(name), 0)
	seek := purposeHistoryKey(name, asOf)
	k, v := c.Seek(seek)
	if k == nil || !bytes.Equal(k, seek) {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return optoutd.Purpose{}, optoutd.Errorf(optoutd.NotFound, "purpose %q was not defined at version %d", name, asOf)
	}
	var sp fsmv1.StoredPurpose
	if err := proto.Unmarshal(v, &sp); err != nil {
		return optoutd.Purpose{}, fmt.Errorf("%w: purpose history %x: %w", command.ErrMalformed, k, err)
	}
	return command.PurposeFromStored(&sp), nil
}

// Changes returns entries with version > after, oldest first: at least
// limit of them if there are that many, and never part of a version (a
// batch's entries all come in one page), so a cursor of versions is enough.
func (r *Reader) Changes(after uint64, limit int) ([]optoutd.AuditEntry, error) {
	var out []optoutd.AuditEntry
	c := r.tx.Bucket(bucketAudit).Cursor()
	for k, v := c.Seek(u64(after + 1)); k != nil; k, v = c.Next() {
		var a fsmv1.AuditEntry
		if err := proto.Unmarshal(v, &a); err != nil {
			return nil, fmt.Errorf("%w: audit %x: %w", command.ErrMalformed, k, err)
		}
		if len(out) >= limit && a.Version != out[len(out)-1].Version {
			break
		}
		out = append(out, command.AuditFromStored(&a))
	}
	return out, nil
}

// VerifyAudit walks the hash chain (see verifyAudit).
func (r *Reader) VerifyAudit() (optoutd.AuditReport, error) { return verifyAudit(r.tx) }

// ForEachRecord calls fn for every record in key order.
func (r *Reader) ForEachRecord(fn func(optoutd.Record) error) error {
	return r.tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
		subject, purpose, err := splitRecordKey(k)
		if err != nil {
			return err
		}
		var sr fsmv1.StoredRecord
		if err := proto.Unmarshal(v, &sr); err != nil {
			return fmt.Errorf("%w: record %x: %w", command.ErrMalformed, k, err)
		}
		return fn(command.RecordFromStored(optoutd.Key{SubjectID: subject, Purpose: purpose}, &sr))
	})
}

// Records returns a page of records in key order (see optoutd.View).
func (r *Reader) Records(after optoutd.Key, purpose string, limit int) ([]optoutd.Record, optoutd.Key, error) {
	c := r.tx.Bucket(bucketRecords).Cursor()
	var k, v []byte
	if after.SubjectID == "" {
		k, v = c.First()
	} else {
		start := recordKey(after.SubjectID, after.Purpose)
		k, v = c.Seek(start)
		if k != nil && bytes.Equal(k, start) {
			k, v = c.Next()
		}
	}
	var out []optoutd.Record
	for scanned := 0; k != nil; k, v = c.Next() {
		subject, p, err := splitRecordKey(k)
		if err != nil {
			return nil, optoutd.Key{}, err
		}
		if purpose == "" || p == purpose {
			var sr fsmv1.StoredRecord
			if err := proto.Unmarshal(v, &sr); err != nil {
				return nil, optoutd.Key{}, fmt.Errorf("%w: record %x: %w", command.ErrMalformed, k, err)
			}
			out = append(out, command.RecordFromStored(optoutd.Key{SubjectID: subject, Purpose: p}, &sr))
		}
		scanned++
		if len(out) == limit || scanned == optoutd.RecordScanBudget(limit) {
			if nk, _ := c.Next(); nk == nil {
				return out, optoutd.Key{}, nil
			}
			return out, optoutd.Key{SubjectID: subject, Purpose: p}, nil
		}
	}
	return out, optoutd.Key{}, nil
}

// NodeAPIAddresses returns the API address each node registered.
func (r *Reader) NodeAPIAddresses() (map[string]string, error) {
	out := map[string]string{}
	err := r.tx.Bucket(bucketNodes).ForEach(func(k, v []byte) error {
		var n fsmv1.StoredNode
		if err := proto.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("%w: node %q: %w", command.ErrMalformed, k, err)
		}
		out[string(k)] = n.ApiAddress
		return nil
	})
	return out, err
}

// Digest hashes every key and value of every bucket, in bucket and key
// order. All of it is replicated state, so two replicas at the same applied
// index must produce the same digest; records counts the records bucket.
func (r *Reader) Digest() (sum [32]byte, records uint64, err error) {
	h := sha256.New()
	var lenbuf [8]byte
	write := func(b []byte) {
		binary.BigEndian.PutUint64(lenbuf[:], uint64(len(b)))
		h.Write(lenbuf[:])
		h.Write(b)
	}
	for _, name := range allBuckets {
		write(name)
		err = r.tx.Bucket(name).ForEach(func(k, v []byte) error {
			if bytes.Equal(name, bucketMeta) && bytes.Equal(k, keyLastStamp) {
				// Bookkeeping for the leader's clock guard; a release that
				// predates it does not write it, and replicas of either
				// release must still compare equal.
				return nil
			}
			write(k)
			write(v)
			if bytes.Equal(name, bucketRecords) {
				records++
			}
			return nil
		})
		if err != nil {
			return sum, records, err
		}
	}
	copy(sum[:], h.Sum(nil))
	return sum, records, nil
}
