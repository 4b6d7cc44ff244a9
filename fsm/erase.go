package fsm

import (
	"bytes"
	"fmt"

	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// applyErase removes a subject's identifier from its records and history
// and keeps a suppression keyed by the HMAC of the subject id, so a later
// Check for the same id still denies. What is kept and what is removed is
// listed in docs/data-model.md.
func (s *state) applyErase(e entry, c *fsmv1.EraseSubjectCommand) (*fsmv1.Result, error) {
	if r := s.schemaTooOld(e, c.ClientSchemaVersion); r != nil {
		return r, nil
	}
	if c.SubjectId == "" {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "subject_id must be set"), nil
	}
	h := s.hmacOf("subject", c.SubjectId)
	if sup, err := s.erasedSuppression(c.SubjectId); err != nil || sup != nil {
		if err != nil {
			return nil, err
		}
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION, "subject was already erased at version %d", sup.Version), nil
	}
	// Remove every record of the subject.
	prefix := recordKey(c.SubjectId, "")
	recs := s.b(bucketRecords)
	var oldAll *fsmv1.StoredRecord
	var n uint32
	cur := recs.Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Seek(prefix) {
		if bytes.Equal(k, recordKey(c.SubjectId, allPurposes)) {
			oldAll = &fsmv1.StoredRecord{}
			if err := proto.Unmarshal(v, oldAll); err != nil {
				return nil, fmt.Errorf("%w: record %x: %w", command.ErrMalformed, k, err)
			}
		}
		if err := cur.Delete(); err != nil {
			return nil, err
		}
		n++
	}
	// Scrub the history: the entries keep their HMACs, so the chain holds.
	if err := s.scrubHistory(h); err != nil {
		return nil, err
	}
	if err := s.eraseOverrides(e, h); err != nil {
		return nil, err
	}
	sup := &fsmv1.StoredRecord{State: fsmv1.State_STATE_OPTED_OUT, Version: e.index, UpdatedAtUnixNanos: e.cmd.Stamp}
	if err := put(s.b(bucketErased), h, sup); err != nil {
		return nil, err
	}
	// The erasure itself is a change of the subject-wide record.
	a := &fsmv1.AuditEntry{
		Version: e.index, TimeUnixNanos: e.cmd.Stamp, Kind: fsmv1.AuditKind_AUDIT_KIND_ERASE,
		SubjectId: c.SubjectId, Purpose: allPurposes, OldState: oldAll.GetState(), NewState: fsmv1.State_STATE_OPTED_OUT,
		OldVersion: oldAll.GetVersion(), Reason: c.Reason, Caller: c.Caller,
	}
	if err := s.appendAudit(a); err != nil {
		return nil, err
	}
	if err := s.scrubEntry(auditKey(a.Version, a.Seq)); err != nil {
		return nil, err
	}
	return &fsmv1.Result{Index: e.index, ErasedRecords: n}, nil
}

func (s *state) scrubHistory(h []byte) error {
	c := s.b(bucketAuditBySubject).Cursor()
	for k, _ := c.Seek(h); k != nil && bytes.HasPrefix(k, h); k, _ = c.Next() {
		if err := s.scrubEntry(k[len(h):]); err != nil {
			return err
		}
	}
	return nil
}

// scrubEntry blanks the personal fields of the entry stored under akey
// (see auditKey).
func (s *state) scrubEntry(akey []byte) error {
	ab := s.b(bucketAudit)
	akey = append([]byte(nil), akey...) // a cursor's key is only valid until the next put
	var a fsmv1.AuditEntry
	ok, err := loadProto(ab, akey, &a)
	if err != nil || !ok {
		return err
	}
	a.SubjectId, a.Source, a.Reason, a.Erased = "", "", "", true
	return put(ab, akey, &a)
}

// erasedSuppression returns the suppression of an erased subject, or nil.
func (s *state) erasedSuppression(subject string) (*fsmv1.StoredRecord, error) {
	return loadRecord(s.b(bucketErased), s.hmacOf("subject", subject))
}
