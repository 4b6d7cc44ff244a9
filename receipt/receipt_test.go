package receipt

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"google.golang.org/protobuf/proto"
)

var seed = bytes.Repeat([]byte{7}, 32)

func body() *optoutv1.DecisionReceipt {
	return &optoutv1.DecisionReceipt{SubjectHash: bytes.Repeat([]byte{1}, 16), Purpose: "analytics",
		Decision: optoutv1.Decision_DECISION_ALLOW, RecordVersion: 12, ReadIndex: 40, NodeId: "n1", IssuedAtUnixNanos: 1700000000e9}
}

func TestSignParseVerify(t *testing.T) {
	s, err := Sign(body(), 3, seed)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) > 250 {
		t.Errorf("a receipt is %d bytes; it should stay compact", len(s))
	}
	p, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if p.Signed.KeyId != 3 || !proto.Equal(p.Body, withFormat(body())) {
		t.Fatalf("parsed %v, %v", p.Signed.KeyId, p.Body)
	}
	if !Verify(p, PublicKey(seed)) {
		t.Fatal("a genuine receipt does not verify")
	}
	if Verify(p, PublicKey(bytes.Repeat([]byte{8}, 32))) {
		t.Fatal("a receipt verifies under another key")
	}
}

func withFormat(b *optoutv1.DecisionReceipt) *optoutv1.DecisionReceipt { b.Format = Format; return b }

// TestAlteredReceiptFails changes one field of a signed body and
// re-encodes it with the original signature: the signature must fail.
func TestAlteredReceiptFails(t *testing.T) {
	s, _ := Sign(body(), 1, seed)
	p, _ := Parse(s)
	p.Body.Decision = optoutv1.Decision_DECISION_DENY
	p.Signed.Body, _ = proto.Marshal(p.Body)
	env, _ := proto.Marshal(p.Signed)
	q, err := Parse(Prefix + enc.EncodeToString(env))
	if err != nil {
		t.Fatal(err)
	}
	if Verify(q, PublicKey(seed)) {
		t.Fatal("an altered receipt verifies")
	}
}

func TestParseRefusesWhatIsNotAReceipt(t *testing.T) {
	good, _ := Sign(body(), 1, seed)
	future := body()
	future.Format = 9
	fb, _ := proto.Marshal(future)
	fenv, _ := proto.Marshal(&optoutv1.SignedReceipt{Body: fb, KeyId: 1, Signature: make([]byte, 64)})
	nosig, _ := proto.Marshal(&optoutv1.SignedReceipt{Body: fb, KeyId: 1})
	cases := []struct {
		name, in, want string
		is             error
	}{
		{"empty", "", "empty", ErrMalformed},
		{"too long", Prefix + strings.Repeat("A", MaxLen), "limit is 1024", ErrMalformed},
		{"no prefix", strings.TrimPrefix(good, Prefix), "does not start with", ErrMalformed},
		{"not base64", Prefix + "!!!", "not base64url", ErrMalformed},
		{"not protobuf", Prefix + enc.EncodeToString([]byte{0xff, 0xff}), "envelope", ErrMalformed},
		{"no signature", Prefix + enc.EncodeToString(nosig), "signature", ErrMalformed},
		{"newer format", Prefix + enc.EncodeToString(fenv), "format 9", ErrUnsupportedFormat},
	}
	for _, c := range cases {
		_, err := Parse(c.in)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %v mentioning %q", c.name, err, c.is, c.want)
		}
	}
}

func TestSignRefusesABadSeed(t *testing.T) {
	if _, err := Sign(body(), 1, []byte("short")); err == nil {
		t.Fatal("signed with a 5-byte seed")
	}
}
