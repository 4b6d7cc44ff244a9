package fsm

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// TestApplyRefusesWhatItCannotStore: an entry that decodes but that no
// release can store or give a meaning to is a rule failure: it is answered
// with an error code, changes nothing, and the state machine goes on.
// Before the fix each of these halted every replica.
func TestApplyRefusesWhatItCannotStore(t *testing.T) {
	huge := strings.Repeat("x", maxKey+1)
	idemMax := strings.Repeat("k", maxKey-7) // one byte over, once the 8-byte expiry prefix is added
	cases := map[string]proto.Message{
		"idempotency key without a window": &fsmv1.SetCommand{SubjectId: "u1", Purpose: "analytics",
			State: fsmv1.State_STATE_OPTED_OUT, IdempotencyKey: "k"},
		"negative idempotency window": &fsmv1.SetCommand{SubjectId: "u1", Purpose: "analytics",
			State: fsmv1.State_STATE_OPTED_OUT, IdempotencyKey: "k", IdempotencyTtlNanos: -5},
		"record key over the storage limit": &fsmv1.SetCommand{SubjectId: huge, Purpose: "analytics", State: fsmv1.State_STATE_OPTED_OUT},
		"idempotency key over the storage limit": &fsmv1.SetCommand{SubjectId: "u1", Purpose: "analytics",
			State: fsmv1.State_STATE_OPTED_OUT, IdempotencyKey: idemMax, IdempotencyTtlNanos: int64(time.Hour)},
		"unknown state":          &fsmv1.SetCommand{SubjectId: "u1", Purpose: "analytics", State: 7},
		"node id over the limit": &fsmv1.RegisterNodeCommand{NodeId: huge},
		"empty node id":          &fsmv1.RegisterNodeCommand{ApiAddress: "127.0.0.1:1"},
		"purpose name over the limit": &fsmv1.DefinePurposeCommand{Purpose: &fsmv1.PurposeDef{Name: huge,
			DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_DENY}},
		"purpose name with NUL": &fsmv1.DefinePurposeCommand{Purpose: &fsmv1.PurposeDef{Name: "a\x00b",
			DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_DENY}},
		"purpose without a name":       &fsmv1.DefinePurposeCommand{Purpose: &fsmv1.PurposeDef{DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_DENY}},
		"purpose without a definition": &fsmv1.DefinePurposeCommand{},
		"principal name over the limit": &fsmv1.PutPrincipalCommand{Name: huge, Kind: fsmv1.PrincipalKind_PRINCIPAL_KIND_CERTIFICATE,
			Role: fsmv1.Role_ROLE_READER},
		"principal without a name": &fsmv1.PutPrincipalCommand{Kind: fsmv1.PrincipalKind_PRINCIPAL_KIND_CERTIFICATE, Role: fsmv1.Role_ROLE_READER},
	}
	f := openTemp(t)
	initFSM(t, f)
	index := uint64(1)
	for name, m := range cases {
		before := contentDigest(t, f)
		data, err := command.Encode(m, time.Unix(10, 0))
		if err != nil {
			t.Fatal(err)
		}
		index++
		res := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data})
		if h := f.Halted(); h != nil {
			t.Fatalf("%s: halted: %v", name, h)
		}
		r, ok := res.(*fsmv1.Result)
		if !ok || r.ErrorCode != fsmv1.ErrorCode_ERROR_CODE_INVALID || r.ErrorMessage == "" {
			t.Errorf("%s: %v, want an invalid rule failure with a message", name, res)
		}
		if after := contentDigest(t, f); after != before {
			t.Errorf("%s: the refused entry changed the state", name)
		}
	}
}

// TestRefusedInitChangesNothing: an InitCluster whose catalog cannot be
// stored is refused whole: no erasure key, no purpose, not initialised, so
// the next leader's InitCluster still applies.
func TestRefusedInitChangesNothing(t *testing.T) {
	f := openTemp(t)
	bad, err := command.Encode(&fsmv1.InitClusterCommand{ErasureKey: make([]byte, 32),
		Purposes: append(command.PurposeDefs(optoutd.StarterCatalog), &fsmv1.PurposeDef{Name: "all", DefaultDecision: fsmv1.DefaultDecision_DEFAULT_DECISION_DENY})}, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	before := contentDigest(t, f)
	res := f.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: bad})
	if r, ok := res.(*fsmv1.Result); !ok || r.ErrorCode != fsmv1.ErrorCode_ERROR_CODE_INVALID {
		t.Fatalf("bad init: %v", res)
	}
	if f.Halted() != nil {
		t.Fatal(f.Halted())
	}
	if after := contentDigest(t, f); after != before {
		t.Fatal("a refused init changed the state")
	}
	var purposes int
	var initialized bool
	if err := f.View(func(r *Reader) error {
		ps, err := r.Purposes()
		purposes = len(ps)
		s, _ := r.Settings()
		initialized = s.Initialized
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if purposes != 0 || initialized {
		t.Fatalf("a refused init left %d purposes, initialized=%v", purposes, initialized)
	}
	good, err := command.Encode(&fsmv1.InitClusterCommand{ErasureKey: make([]byte, 32), Purposes: command.PurposeDefs(optoutd.StarterCatalog)}, time.Unix(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := f.Apply(&raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: good}).(*fsmv1.Result); !ok || r.ErrorCode != 0 || !r.Settings.Initialized {
		t.Fatalf("the next init: %v", r)
	}
}

// contentDigest hashes every bucket except the applied index and term and
// the last stamp, which every entry, refused or not, advances.
func contentDigest(t *testing.T, f *FSM) [32]byte {
	t.Helper()
	h := sha256.New()
	err := f.View(func(r *Reader) error {
		for _, name := range allBuckets {
			h.Write(name)
			err := r.tx.Bucket(name).ForEach(func(k, v []byte) error {
				if bytes.Equal(name, bucketMeta) && (bytes.Equal(k, keyAppliedIndex) || bytes.Equal(k, keyAppliedTerm) || bytes.Equal(k, keyLastStamp)) {
					return nil
				}
				h.Write(k)
				h.Write([]byte{0})
				h.Write(v)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}
