package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// Overrides. Every override ever created stays in bucketOverrides (by id,
// the log index that created it). The active ones are also in
// bucketOverrideScope, keyed purpose 0x00 subject 0x00 id, so a Check
// finds those that cover it with four prefix seeks; one with a subject is
// also in bucketOverrideBySubject (subject HMAC | id) so that erasure can
// find and scrub it. Expiry is a log entry (EndOverrideCommand with
// expire), proposed by the leader once due and checked here against the
// entry's stamp, so every replica ends the same override at the same index.

func durationOf(nanos int64) time.Duration { return time.Duration(nanos) }

func overrideScopeKey(purpose, subject string, id uint64) []byte {
	k := append(append(append([]byte(purpose), 0), subject...), 0)
	return binary.BigEndian.AppendUint64(k, id)
}

func (s *state) applyCreateOverride(e entry, c *fsmv1.CreateOverrideCommand) (*fsmv1.Result, error) {
	if r := s.schemaTooOld(e, c.ClientSchemaVersion); r != nil {
		return r, nil
	}
	invalid := func(format string, args ...any) (*fsmv1.Result, error) {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, format, args...), nil
	}
	switch {
	case c.Effect != fsmv1.OverrideEffect_OVERRIDE_EFFECT_ALLOW && c.Effect != fsmv1.OverrideEffect_OVERRIDE_EFFECT_DENY:
		return invalid("effect must be ALLOW or DENY")
	case c.Reason == "" || c.Owner == "":
		return invalid("an override needs a reason and an owner")
	case c.ExpiresAtUnixNanos <= e.cmd.Stamp:
		return invalid("expires_at must be after the time the override is created")
	case c.ExpiresAtUnixNanos-e.cmd.Stamp > int64(command.MaxOverrideOf(s.settings)):
		return invalid("expires_at is %v after creation, over the cluster's max_override of %v",
			durationOf(c.ExpiresAtUnixNanos-e.cmd.Stamp), command.MaxOverrideOf(s.settings))
	}
	if msg := keyProblem("override scope", overrideScopeKey(c.Purpose, c.SubjectId, e.index)); msg != "" {
		return invalid("%s", msg)
	}
	if c.Purpose != allPurposes {
		if _, ok, err := s.purpose(c.Purpose); err != nil || !ok {
			return failed(e, fsmv1.ErrorCode_ERROR_CODE_NOT_FOUND, "purpose %q is not defined", c.Purpose), err
		}
	}
	o := &fsmv1.StoredOverride{
		SubjectId: c.SubjectId, Purpose: c.Purpose, Effect: c.Effect, Reason: c.Reason, Owner: c.Owner,
		CreatedAtUnixNanos: e.cmd.Stamp, ExpiresAtUnixNanos: c.ExpiresAtUnixNanos,
		State: fsmv1.OverrideState_OVERRIDE_STATE_ACTIVE, CreatedBy: c.Caller,
	}
	if err := put(s.b(bucketOverrides), u64(e.index), o); err != nil {
		return nil, err
	}
	if err := s.b(bucketOverrideScope).Put(overrideScopeKey(c.Purpose, c.SubjectId, e.index), nil); err != nil {
		return nil, err
	}
	if c.SubjectId != "" {
		if err := s.b(bucketOverrideBySubject).Put(auditSubjectKey(s.hmacOf("subject", c.SubjectId), e.index), nil); err != nil {
			return nil, err
		}
	}
	if err := s.auditOverride(e, fsmv1.AuditKind_AUDIT_KIND_OVERRIDE_CREATED, e.index, o, c.Reason, c.Caller); err != nil {
		return nil, err
	}
	return &fsmv1.Result{Index: e.index, Override: o, OverrideId: e.index}, nil
}

func (s *state) applyEndOverride(e entry, c *fsmv1.EndOverrideCommand) (*fsmv1.Result, error) {
	if r := s.schemaTooOld(e, c.ClientSchemaVersion); r != nil {
		return r, nil
	}
	var o fsmv1.StoredOverride
	ok, err := loadProto(s.b(bucketOverrides), u64(c.Id), &o)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_NOT_FOUND, "override %d does not exist", c.Id), nil
	case o.State != fsmv1.OverrideState_OVERRIDE_STATE_ACTIVE:
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION, "override %d is already %s", c.Id,
			optoutd.OverrideState(o.State)), nil
	case c.Expire && e.cmd.Stamp < o.ExpiresAtUnixNanos:
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION, "override %d is not due to expire until %v", c.Id,
			command.UnixNanos(o.ExpiresAtUnixNanos)), nil
	case !c.Expire && c.Reason == "":
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "revoking an override needs a reason"), nil
	}
	kind := fsmv1.AuditKind_AUDIT_KIND_OVERRIDE_REVOKED
	o.State, o.EndReason, o.EndedBy = fsmv1.OverrideState_OVERRIDE_STATE_REVOKED, c.Reason, c.Caller
	if c.Expire {
		kind = fsmv1.AuditKind_AUDIT_KIND_OVERRIDE_EXPIRED
		o.State, o.EndReason, o.EndedBy = fsmv1.OverrideState_OVERRIDE_STATE_EXPIRED, "expired", ""
		s.settings.OverridesExpired++
		if err := s.saveSettings(); err != nil {
			return nil, err
		}
	}
	if err := s.endOverride(e, c.Id, &o); err != nil {
		return nil, err
	}
	if err := s.auditOverride(e, kind, c.Id, &o, o.EndReason, c.Caller); err != nil {
		return nil, err
	}
	return &fsmv1.Result{Index: e.index, Override: &o, OverrideId: c.Id}, nil
}

// endOverride stores o as ended at e and takes it out of the scope index.
func (s *state) endOverride(e entry, id uint64, o *fsmv1.StoredOverride) error {
	o.EndedAtUnixNanos, o.EndedVersion = e.cmd.Stamp, e.index
	if err := s.b(bucketOverrideScope).Delete(overrideScopeKey(o.Purpose, o.SubjectId, id)); err != nil {
		return err
	}
	return put(s.b(bucketOverrides), u64(id), o)
}

func (s *state) auditOverride(e entry, kind fsmv1.AuditKind, id uint64, o *fsmv1.StoredOverride, reason, caller string) error {
	return s.appendAudit(&fsmv1.AuditEntry{
		Version: e.index, TimeUnixNanos: e.cmd.Stamp, Kind: kind, SubjectId: o.SubjectId, Purpose: o.Purpose,
		Source: o.Owner, Reason: reason, Caller: caller, OverrideId: id,
	})
}

// eraseOverrides ends the subject's active overrides, blanks its id in
// every override of it and scrubs their audit entries (erasure).
func (s *state) eraseOverrides(e entry, subjectHMAC []byte) error {
	c := s.b(bucketOverrideBySubject).Cursor()
	for k, _ := c.Seek(subjectHMAC); k != nil && bytes.HasPrefix(k, subjectHMAC); k, _ = c.Next() {
		id := readU64(k[len(subjectHMAC):])
		var o fsmv1.StoredOverride
		if ok, err := loadProto(s.b(bucketOverrides), u64(id), &o); err != nil || !ok {
			return err
		}
		if o.State == fsmv1.OverrideState_OVERRIDE_STATE_ACTIVE {
			o.State, o.EndReason = fsmv1.OverrideState_OVERRIDE_STATE_REVOKED, "subject erased"
			if err := s.endOverride(e, id, &o); err != nil {
				return err
			}
		}
		for _, v := range []uint64{id, o.EndedVersion} { // override entries are alone at their version (seq 0)
			if err := s.scrubEntry(auditKey(v, 0)); err != nil {
				return err
			}
		}
		o.SubjectId, o.Erased = "", true
		if err := put(s.b(bucketOverrides), u64(id), &o); err != nil {
			return err
		}
	}
	return nil
}

// Overrides returns the active overrides whose scope covers k (in force or
// not by the clock: see optoutd.WithOverrides).
func (r *Reader) Overrides(k optoutd.Key) ([]optoutd.Override, error) {
	sc := r.tx.Bucket(bucketOverrideScope)
	if first, _ := sc.Cursor().First(); first == nil {
		return nil, nil // no active override anywhere: the common case
	}
	var out []optoutd.Override
	for _, p := range []string{k.Purpose, allPurposes} {
		for _, subj := range []string{k.SubjectID, ""} {
			prefix := append(append(append([]byte(p), 0), subj...), 0)
			c := sc.Cursor()
			for key, _ := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix) && len(key) == len(prefix)+8; key, _ = c.Next() {
				o, err := r.override(readU64(key[len(prefix):]))
				if err != nil {
					return nil, err
				}
				out = append(out, o)
			}
		}
		if k.Purpose == allPurposes {
			break
		}
	}
	return out, nil
}

// ListOverrides returns overrides newest first: only active ones unless
// ended, only purpose's unless purpose is "", at most limit.
func (r *Reader) ListOverrides(ended bool, purpose string, limit int) ([]optoutd.Override, error) {
	var out []optoutd.Override
	c := r.tx.Bucket(bucketOverrides).Cursor()
	for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
		var so fsmv1.StoredOverride
		if err := proto.Unmarshal(v, &so); err != nil {
			return nil, fmt.Errorf("%w: override %x: %w", command.ErrMalformed, k, err)
		}
		if (!ended && so.State != fsmv1.OverrideState_OVERRIDE_STATE_ACTIVE) || (purpose != "" && so.Purpose != purpose) {
			continue
		}
		out = append(out, command.OverrideFromStored(readU64(k), &so))
	}
	return out, nil
}

// Override returns one override, or NotFound.
func (r *Reader) Override(id uint64) (optoutd.Override, error) { return r.override(id) }

func (r *Reader) override(id uint64) (optoutd.Override, error) {
	var so fsmv1.StoredOverride
	ok, err := loadProto(r.tx.Bucket(bucketOverrides), u64(id), &so)
	if err != nil {
		return optoutd.Override{}, err
	}
	if !ok {
		return optoutd.Override{}, optoutd.Errorf(optoutd.NotFound, "override %d does not exist", id)
	}
	return command.OverrideFromStored(id, &so), nil
}
