package fsm

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/optoutd/optoutd"
	fsmv1 "github.com/optoutd/optoutd/fsm/gen/optout/fsm/v1"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// Reader reads one consistent version of the state. It is valid only inside
// the View callback that produced it. It implements optoutd.View.
type Reader struct {
	tx *bbolt.Tx
}

var _ optoutd.View = (*Reader)(nil)

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
	return RecordFromStored(k, sr), true, nil
}

// ForEachRecord calls fn for every record in key order.
func (r *Reader) ForEachRecord(fn func(optoutd.Record) error) error {
	return r.tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
		subject, purpose, err := splitRecordKey(k)
		if err != nil {
			return err
		}
		var sr fsmv1.StoredRecord
		if err := proto.Unmarshal(v, &sr); err != nil {
			return fmt.Errorf("%w: record %x: %w", ErrMalformed, k, err)
		}
		return fn(RecordFromStored(optoutd.Key{SubjectID: subject, Purpose: purpose}, &sr))
	})
}

// NodeAPIAddresses returns the API address each node registered.
func (r *Reader) NodeAPIAddresses() (map[string]string, error) {
	out := map[string]string{}
	err := r.tx.Bucket(bucketNodes).ForEach(func(k, v []byte) error {
		var n fsmv1.StoredNode
		if err := proto.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("%w: node %q: %w", ErrMalformed, k, err)
		}
		out[string(k)] = n.ApiAddress
		return nil
	})
	return out, err
}

// RecordFromStored converts the stored form to the domain type.
func RecordFromStored(k optoutd.Key, sr *fsmv1.StoredRecord) optoutd.Record {
	return optoutd.Record{
		Key:       k,
		State:     StateFromProto(sr.State),
		Version:   sr.Version,
		UpdatedAt: time.Unix(0, sr.UpdatedAtUnixNanos).UTC(),
		Source:    sr.Source,
		Reason:    sr.Reason,
	}
}

// StateFromProto converts the log's state enum to the domain type.
func StateFromProto(s fsmv1.State) optoutd.State {
	switch s {
	case fsmv1.State_STATE_OPTED_OUT:
		return optoutd.StateOptedOut
	case fsmv1.State_STATE_OPTED_IN:
		return optoutd.StateOptedIn
	default:
		return optoutd.StateUnspecified
	}
}

// StateToProto converts the domain state to the log's enum.
func StateToProto(s optoutd.State) fsmv1.State {
	switch s {
	case optoutd.StateOptedOut:
		return fsmv1.State_STATE_OPTED_OUT
	case optoutd.StateOptedIn:
		return fsmv1.State_STATE_OPTED_IN
	default:
		return fsmv1.State_STATE_UNSPECIFIED
	}
}

// Digest hashes every record (key and stored value bytes, in key order)
// together with nothing else, so two replicas at the same applied index
// must produce the same digest.
func (r *Reader) Digest() (sum [32]byte, records uint64, err error) {
	h := sha256.New()
	err = r.tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
		var lenbuf [8]byte
		binary.BigEndian.PutUint64(lenbuf[:], uint64(len(k)))
		h.Write(lenbuf[:])
		h.Write(k)
		binary.BigEndian.PutUint64(lenbuf[:], uint64(len(v)))
		h.Write(lenbuf[:])
		h.Write(v)
		records++
		return nil
	})
	copy(sum[:], h.Sum(nil))
	return sum, records, err
}
