package fsm

import (
	"fmt"

	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// entry is one committed log entry as apply sees it: position and decoded
// command. It is built from a *raft.Log by the FSM, or by tests directly.
type entry struct {
	index uint64
	term  uint64
	cmd   command.Decoded
}

// housekeepingBudget bounds how many expired idempotency keys and audit
// entries one log entry may remove, so no single apply stalls; a backlog is
// worked off over the following entries.
const housekeepingBudget = 64

// apply is the deterministic step: given the write transaction and one
// entry, it changes state and returns the result. It reads no clock (it
// uses the leader's stamp in the entry), draws no randomness and does no
// I/O but the transaction; housekeeping (expiry, retention) is driven by the
// entry's stamp too, so every replica removes the same things at the same
// index. Rule violations are reported in the Result and change nothing; an
// error is a storage failure, which the caller turns into a halt.
func apply(tx *bbolt.Tx, e entry) (*fsmv1.Result, error) {
	st, err := newState(tx)
	if err != nil {
		return nil, err
	}
	if err := st.housekeeping(e.cmd.Stamp); err != nil {
		return nil, err
	}
	var res *fsmv1.Result
	switch p := e.cmd.Payload.(type) {
	case *fsmv1.SetCommand:
		res, err = st.applySet(e, p)
	case *fsmv1.TermStartCommand:
		res = &fsmv1.Result{Index: e.index, Term: e.term}
	case *fsmv1.RegisterNodeCommand:
		res, err = st.applyRegisterNode(e, p)
	case *fsmv1.InitClusterCommand:
		res, err = st.applyInit(e, p)
	case *fsmv1.DefinePurposeCommand:
		res, err = st.applyDefinePurpose(e, p)
	case *fsmv1.UpdateSettingsCommand:
		res, err = st.applyUpdateSettings(e, p)
	case *fsmv1.EraseSubjectCommand:
		res, err = st.applyErase(e, p)
	case *fsmv1.PutPrincipalCommand:
		res, err = st.applyPutPrincipal(e, p)
	case *fsmv1.DeletePrincipalCommand:
		res, err = st.applyDeletePrincipal(e, p)
	case *fsmv1.RotateReceiptKeyCommand:
		res, err = st.applyRotateReceiptKey(e, p)
	case *fsmv1.CreateOverrideCommand:
		res, err = st.applyCreateOverride(e, p)
	case *fsmv1.EndOverrideCommand:
		res, err = st.applyEndOverride(e, p)
	case *fsmv1.RecordReportsCommand:
		res, err = st.applyRecordReports(e, p)
	case *fsmv1.SetBatchCommand:
		res, err = st.applySetBatch(e, p)
	default:
		// Decode only returns the types above; reaching here is a bug.
		return nil, fmt.Errorf("%w: no apply step for %T", command.ErrUnknownType, p)
	}
	if err != nil {
		return nil, err
	}
	if res.Index == 0 {
		res.Index = e.index
	}
	res.CatalogVersion = st.settings.CatalogVersion
	return res, nil
}

func (s *state) housekeeping(stamp int64) error {
	if err := s.expireIdempotency(stamp, housekeepingBudget); err != nil {
		return err
	}
	return s.compactAudit(stamp, housekeepingBudget)
}

// schemaTooOld enforces the cluster's minimum client schema version on a
// write. It is checked here, at apply time, so a write proposed just before
// the minimum was raised and committed just after is refused on every node.
func (s *state) schemaTooOld(e entry, client uint32) *fsmv1.Result {
	min := s.settings.MinSchemaVersion
	if min == 0 || client >= min {
		return nil
	}
	if client == 0 {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION,
			"the request carries no Optout-Schema-Version header, and the cluster requires schema version %d or newer", min)
	}
	return failed(e, fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION,
		"client schema version %d is below the cluster's minimum %d; upgrade the client", client, min)
}

func (s *state) applySet(e entry, c *fsmv1.SetCommand) (*fsmv1.Result, error) {
	if msg := setProblem(c); msg != "" {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "%s", msg), nil
	}
	// A replay answers with the first result even if the schema gate was
	// raised since: that write was applied, and saying otherwise would be a
	// false "not applied".
	if c.IdempotencyKey != "" {
		prior, err := s.idempotentResult(e, []byte(c.IdempotencyKey), requestHash(c))
		if err != nil || prior != nil {
			return prior, err
		}
	}
	if r := s.schemaTooOld(e, c.ClientSchemaVersion); r != nil {
		return r, nil
	}
	res, prev, err := s.setRecord(e, c, 0)
	if err != nil || res.ErrorCode != fsmv1.ErrorCode_ERROR_CODE_UNSPECIFIED {
		return res, err
	}
	if c.IdempotencyKey != "" {
		if err := s.rememberIdempotent(e, []byte(c.IdempotencyKey), requestHash(c), c.IdempotencyTtlNanos, res); err != nil {
			return nil, err
		}
	}
	withPrevious(res, prev)
	return res, nil
}

// withPrevious adds the record's state before the write to a result. It is
// done after the result is remembered for idempotency, so what is stored
// (and hashed into a state digest) is the same as before the field existed
// and old and new nodes keep equal state; a replayed result lacks it.
func withPrevious(res *fsmv1.Result, prev *fsmv1.StoredRecord) {
	res.PreviousState, res.PreviousVersion = prev.GetState(), prev.GetVersion()
}

// setRecord is the rule-checked write of one record (Set's rules after the
// request-level checks), audited at (e.index, seq). A refusal changes
// nothing. It also returns the record before the write (nil when new).
func (s *state) setRecord(e entry, c *fsmv1.SetCommand, seq uint32) (*fsmv1.Result, *fsmv1.StoredRecord, error) {
	if c.Purpose != allPurposes {
		if _, ok, err := s.purpose(c.Purpose); err != nil || !ok {
			return failed(e, fsmv1.ErrorCode_ERROR_CODE_NOT_FOUND, "purpose %q is not defined", c.Purpose), nil, err
		}
	}
	key := recordKey(c.SubjectId, c.Purpose)
	cur, err := loadRecord(s.b(bucketRecords), key)
	if err != nil {
		return nil, nil, err
	}
	if c.Purpose == allPurposes && cur == nil {
		// An erased subject's suppression is its "all" record.
		if cur, err = s.erasedSuppression(c.SubjectId); err != nil {
			return nil, nil, err
		}
		if cur != nil {
			return failed(e, fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION,
				"this subject was erased at version %d; its suppression cannot be changed", cur.Version), nil, nil
		}
	}
	if c.ExpectedVersion != nil && *c.ExpectedVersion != cur.GetVersion() {
		return &fsmv1.Result{
			Index:          e.index,
			ErrorCode:      fsmv1.ErrorCode_ERROR_CODE_VERSION_MISMATCH,
			ErrorMessage:   fmt.Sprintf("expected version %d, current version %d", *c.ExpectedVersion, cur.GetVersion()),
			CurrentVersion: cur.GetVersion(),
		}, nil, nil
	}
	// Deny wins: only a write that names the opt-out it overrides may turn
	// it back into an opt-in, so a stale or concurrent opt-in can never
	// erase a newer opt-out.
	if cur.GetState() == fsmv1.State_STATE_OPTED_OUT && c.State == fsmv1.State_STATE_OPTED_IN && c.ExpectedVersion == nil {
		return &fsmv1.Result{
			Index:     e.index,
			ErrorCode: fsmv1.ErrorCode_ERROR_CODE_VERSION_MISMATCH,
			ErrorMessage: fmt.Sprintf("re-consent needs expectedVersion: the subject opted out at current version %d, "+
				"and an opt-in may replace an opt-out only by naming that version", cur.GetVersion()),
			CurrentVersion: cur.GetVersion(),
		}, nil, nil
	}
	rec := &fsmv1.StoredRecord{
		State:              c.State,
		Version:            e.index,
		UpdatedAtUnixNanos: e.cmd.Stamp,
		Source:             c.Source,
		Reason:             c.Reason,
	}
	if err := put(s.b(bucketRecords), key, rec); err != nil {
		return nil, nil, err
	}
	if err := s.appendAudit(&fsmv1.AuditEntry{
		Version: e.index, TimeUnixNanos: e.cmd.Stamp, Kind: fsmv1.AuditKind_AUDIT_KIND_SET,
		SubjectId: c.SubjectId, Purpose: c.Purpose, OldState: cur.GetState(), NewState: c.State,
		OldVersion: cur.GetVersion(), Source: c.Source, Reason: c.Reason, Caller: c.Caller, Seq: seq,
	}); err != nil {
		return nil, nil, err
	}
	return &fsmv1.Result{Index: e.index, Record: rec}, cur, nil
}

func (s *state) applyRegisterNode(e entry, c *fsmv1.RegisterNodeCommand) (*fsmv1.Result, error) {
	if msg := keyProblem("node_id", []byte(c.NodeId)); msg != "" {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "%s", msg), nil
	}
	n := &fsmv1.StoredNode{ApiAddress: c.ApiAddress, Version: e.index}
	if err := put(s.b(bucketNodes), []byte(c.NodeId), n); err != nil {
		return nil, err
	}
	return &fsmv1.Result{Index: e.index}, nil
}

func failed(e entry, code fsmv1.ErrorCode, format string, args ...any) *fsmv1.Result {
	return &fsmv1.Result{Index: e.index, ErrorCode: code, ErrorMessage: fmt.Sprintf(format, args...)}
}

// loadRecord returns nil (and no error) when the key has no record.
func loadRecord(b *bbolt.Bucket, key []byte) (*fsmv1.StoredRecord, error) {
	var r fsmv1.StoredRecord
	ok, err := loadProto(b, key, &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func put(b *bbolt.Bucket, key []byte, m proto.Message) error {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err == nil {
		err = b.Put(key, v)
	}
	if err != nil {
		return fmt.Errorf("fsm: put %x: %w", key, err)
	}
	return nil
}
