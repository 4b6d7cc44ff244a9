package fsm

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"

	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// Bucket names. Every bucket exists from Open on.
var (
	bucketMeta                = []byte("meta")
	bucketRecords             = []byte("records")               // recordKey(subject, purpose) -> StoredRecord
	bucketNodes               = []byte("nodes")                 // node id -> StoredNode
	bucketPurposes            = []byte("purposes")              // name -> StoredPurpose
	bucketPurposeHistory      = []byte("purpose_history")       // name 0x00 version -> StoredPurpose
	bucketAudit               = []byte("audit")                 // version -> AuditEntry
	bucketAuditBySubject      = []byte("audit_by_subject")      // subject HMAC | version -> purpose
	bucketIdem                = []byte("idempotency")           // key -> StoredIdempotency
	bucketIdemExpiry          = []byte("idempotency_exp")       // expiry | key -> nil
	bucketErased              = []byte("erased")                // subject HMAC -> StoredRecord (the suppression)
	bucketPrincipals          = []byte("principals")            // name -> StoredPrincipal
	bucketTokenIndex          = []byte("token_index")           // token SHA-256 -> principal name
	bucketReceiptKeys         = []byte("receipt_keys")          // key id (4 bytes BE) -> StoredReceiptKey
	bucketOverrides           = []byte("overrides")             // id -> StoredOverride
	bucketOverrideScope       = []byte("override_scope")        // purpose 0 subject 0 id -> nil (active only)
	bucketOverrideBySubject   = []byte("override_by_subject")   // subject HMAC | id -> nil
	bucketViolations          = []byte("violations")            // id -> StoredViolation
	bucketViolationsByService = []byte("violations_by_service") // service 0 id -> nil
	bucketServiceStats        = []byte("service_stats")         // service 0 hour -> ServiceStats

	keyAppliedIndex  = []byte("applied_index")
	keyAppliedTerm   = []byte("applied_term")
	keyStorageFormat = []byte("storage_format")
	keySettings      = []byte("settings")
	keyErasureKey    = []byte("erasure_key")
	keyAuditHead     = []byte("audit_head")   // hash of the newest audit entry
	keyAuditAnchor   = []byte("audit_anchor") // hash of the newest compacted entry
	keyAuditFloor    = []byte("audit_floor")  // version of the newest compacted entry
	keyLastStamp     = []byte("last_stamp")   // latest leader stamp applied (Unix ns)
)

// storageFormat is the layout of the bbolt file. Open refuses a file with a
// newer layout. Format 2 added the catalog, audit, idempotency and erasure
// buckets; a format-1 file is upgraded in place by creating them.
const storageFormat uint64 = 2

var allBuckets = [][]byte{
	bucketMeta, bucketRecords, bucketNodes, bucketPurposes, bucketPurposeHistory,
	bucketAudit, bucketAuditBySubject, bucketIdem, bucketIdemExpiry, bucketErased,
	bucketPrincipals, bucketTokenIndex, bucketReceiptKeys, bucketOverrides, bucketOverrideScope,
	bucketOverrideBySubject, bucketViolations, bucketViolationsByService, bucketServiceStats,
}

// state is one transaction's view of the buckets, with the settings and
// the erasure key loaded once.
type state struct {
	tx       *bbolt.Tx
	settings *fsmv1.Settings
	key      []byte
	// mac is an HMAC keyed with key, reused between hmacOf calls (a reset
	// keyed HMAC skips hashing the key pads again); memo remembers recent
	// results, since the writes of a batch mostly share source and reason.
	// Both are dropped when the key changes (setKey).
	mac  hash.Hash
	memo map[string][]byte
}

// memoLimit bounds hmacOf's memo.
const memoLimit = 256

// setKey changes the erasure key.
func (s *state) setKey(k []byte) { s.key, s.mac, s.memo = k, nil, nil }

func newState(tx *bbolt.Tx) (*state, error) {
	s := &state{tx: tx, settings: &fsmv1.Settings{}}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keySettings); v != nil {
		if err := proto.Unmarshal(v, s.settings); err != nil {
			return nil, fmt.Errorf("%w: settings: %w", command.ErrMalformed, err)
		}
	}
	// Before InitCluster the key is empty; HMAC with an empty key is still
	// deterministic, and only tests apply writes before InitCluster.
	s.setKey(append([]byte(nil), meta.Get(keyErasureKey)...))
	return s, nil
}

func (s *state) b(name []byte) *bbolt.Bucket { return s.tx.Bucket(name) }

func (s *state) saveSettings() error {
	return put(s.b(bucketMeta), keySettings, s.settings)
}

// hmacOf is the keyed hash that stands in for personal fields: the subject
// id in indexes and erased records, and subject, source and reason in the
// audit chain. The label separates the fields' domains.
func (s *state) hmacOf(label, v string) []byte {
	m := label + "\x00" + v
	if h, ok := s.memo[m]; ok {
		return h
	}
	if s.mac == nil {
		s.mac = hmac.New(sha256.New, s.key)
	} else {
		s.mac.Reset()
	}
	s.mac.Write([]byte(m))
	h := s.mac.Sum(nil)
	h = h[:len(h):len(h)] // shared through the memo: an append must copy
	if s.memo == nil || len(s.memo) >= memoLimit {
		s.memo = make(map[string][]byte, 16)
	}
	s.memo[m] = h
	return h
}

// hmacWith is hmacOf without a state (the same bytes).
func hmacWith(key []byte, label, v string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return m.Sum(nil)
}

func loadProto[T proto.Message](b *bbolt.Bucket, key []byte, m T) (bool, error) {
	v := b.Get(key)
	if v == nil {
		return false, nil
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return false, fmt.Errorf("%w: %x: %w", command.ErrMalformed, key, err)
	}
	return true, nil
}
