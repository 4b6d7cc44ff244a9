package fsm

import (
	"fmt"

	fsmv1 "github.com/optoutd/optoutd/fsm/gen/optout/fsm/v1"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// Bucket names. Every bucket exists from Open on.
var (
	bucketMeta    = []byte("meta")
	bucketRecords = []byte("records")
	bucketNodes   = []byte("nodes")

	keyAppliedIndex  = []byte("applied_index")
	keyStorageFormat = []byte("storage_format")
)

// storageFormat is the layout of the bbolt file. Open refuses a file with a
// newer layout.
const storageFormat uint64 = 1

var allBuckets = [][]byte{bucketMeta, bucketRecords, bucketNodes}

// entry is one committed log entry as apply sees it: position and decoded
// command. It is built from a *raft.Log by the FSM, or by tests directly.
type entry struct {
	index uint64
	term  uint64
	cmd   Decoded
}

// apply is the deterministic step: given the write transaction and one
// entry, it changes state and returns the result. It reads no clock, draws
// no randomness and does no I/O but the transaction. Rule violations are
// reported in the Result and change nothing; an error is a storage failure,
// which the caller turns into a halt.
func apply(tx *bbolt.Tx, e entry) (*fsmv1.Result, error) {
	switch p := e.cmd.Payload.(type) {
	case *fsmv1.SetCommand:
		return applySet(tx, e, p)
	case *fsmv1.TermStartCommand:
		return &fsmv1.Result{Index: e.index, Term: e.term}, nil
	case *fsmv1.RegisterNodeCommand:
		return applyRegisterNode(tx, e, p)
	default:
		// Decode only returns the types above; reaching here is a bug.
		return nil, fmt.Errorf("%w: no apply step for %T", ErrUnknownType, p)
	}
}

func applySet(tx *bbolt.Tx, e entry, c *fsmv1.SetCommand) (*fsmv1.Result, error) {
	if c.State != fsmv1.State_STATE_OPTED_OUT && c.State != fsmv1.State_STATE_OPTED_IN {
		return invalid(e, "state must be opted_out or opted_in, got %s", c.State), nil
	}
	if c.SubjectId == "" || c.Purpose == "" {
		return invalid(e, "subject_id and purpose must be set"), nil
	}
	b := tx.Bucket(bucketRecords)
	key := recordKey(c.SubjectId, c.Purpose)
	cur, err := loadRecord(b, key)
	if err != nil {
		return nil, err
	}
	if c.ExpectedVersion != nil && *c.ExpectedVersion != cur.GetVersion() {
		return &fsmv1.Result{
			Index:          e.index,
			ErrorCode:      fsmv1.ErrorCode_ERROR_CODE_VERSION_MISMATCH,
			ErrorMessage:   fmt.Sprintf("expected version %d, current version %d", *c.ExpectedVersion, cur.GetVersion()),
			CurrentVersion: cur.GetVersion(),
		}, nil
	}
	rec := &fsmv1.StoredRecord{
		State:              c.State,
		Version:            e.index,
		UpdatedAtUnixNanos: e.cmd.Stamp,
		Source:             c.Source,
		Reason:             c.Reason,
	}
	if err := put(b, key, rec); err != nil {
		return nil, err
	}
	return &fsmv1.Result{Index: e.index, Record: rec}, nil
}

func applyRegisterNode(tx *bbolt.Tx, e entry, c *fsmv1.RegisterNodeCommand) (*fsmv1.Result, error) {
	if c.NodeId == "" {
		return invalid(e, "node_id must be set"), nil
	}
	n := &fsmv1.StoredNode{ApiAddress: c.ApiAddress, Version: e.index}
	if err := put(tx.Bucket(bucketNodes), []byte(c.NodeId), n); err != nil {
		return nil, err
	}
	return &fsmv1.Result{Index: e.index}, nil
}

func invalid(e entry, format string, args ...any) *fsmv1.Result {
	return &fsmv1.Result{Index: e.index, ErrorCode: fsmv1.ErrorCode_ERROR_CODE_INVALID, ErrorMessage: fmt.Sprintf(format, args...)}
}

// loadRecord returns nil (and no error) when the key has no record.
func loadRecord(b *bbolt.Bucket, key []byte) (*fsmv1.StoredRecord, error) {
	v := b.Get(key)
	if v == nil {
		return nil, nil
	}
	var r fsmv1.StoredRecord
	if err := proto.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("%w: stored record %x: %w", ErrMalformed, key, err)
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
