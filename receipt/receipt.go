package receipt

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"google.golang.org/protobuf/proto"
)

// Prefix starts every receipt of the current envelope.
const Prefix = "optr1."

// Format is the DecisionReceipt layout this package writes; it reads 1..Format.
const Format uint32 = 1

// MaxLen bounds a receipt's text; a current receipt is about 200 bytes.
const MaxLen = 1024

var (
	// ErrMalformed: not a receipt (prefix, encoding or layout).
	ErrMalformed = errors.New("malformed receipt")
	// ErrUnsupportedFormat: a body layout newer than this build knows.
	ErrUnsupportedFormat = errors.New("unsupported receipt format")
)

var enc = base64.RawURLEncoding

// Sign marshals body (deterministically), signs it with the key made from
// seed and returns the receipt text. body.Format is set to Format.
func Sign(body *optoutv1.DecisionReceipt, keyID uint32, seed []byte) (string, error) {
	if len(seed) != ed25519.SeedSize {
		return "", fmt.Errorf("receipt: signing seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	body.Format = Format
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("receipt: marshal body: %w", err)
	}
	sig := ed25519.Sign(ed25519.NewKeyFromSeed(seed), b)
	env, err := proto.MarshalOptions{Deterministic: true}.Marshal(&optoutv1.SignedReceipt{Body: b, KeyId: keyID, Signature: sig})
	if err != nil {
		return "", fmt.Errorf("receipt: marshal envelope: %w", err)
	}
	return Prefix + enc.EncodeToString(env), nil
}

// Parsed is a receipt taken apart: the envelope and the decoded body.
type Parsed struct {
	Signed *optoutv1.SignedReceipt
	Body   *optoutv1.DecisionReceipt
}

// Parse decodes a receipt without checking its signature. The errors wrap
// ErrMalformed or ErrUnsupportedFormat and say what was wrong.
func Parse(s string) (Parsed, error) {
	switch {
	case s == "":
		return Parsed{}, fmt.Errorf("%w: empty", ErrMalformed)
	case len(s) > MaxLen:
		return Parsed{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMalformed, len(s), MaxLen)
	case !strings.HasPrefix(s, Prefix):
		return Parsed{}, fmt.Errorf("%w: it does not start with %q", ErrMalformed, Prefix)
	}
	raw, err := enc.DecodeString(s[len(Prefix):])
	if err != nil {
		return Parsed{}, fmt.Errorf("%w: not base64url: %w", ErrMalformed, err)
	}
	var sr optoutv1.SignedReceipt
	if err := proto.Unmarshal(raw, &sr); err != nil {
		return Parsed{}, fmt.Errorf("%w: envelope: %w", ErrMalformed, err)
	}
	if len(sr.Signature) != ed25519.SignatureSize || sr.KeyId == 0 || len(sr.Body) == 0 {
		return Parsed{}, fmt.Errorf("%w: the envelope lacks a key id, a body or a %d-byte signature", ErrMalformed, ed25519.SignatureSize)
	}
	var body optoutv1.DecisionReceipt
	if err := proto.Unmarshal(sr.Body, &body); err != nil {
		return Parsed{}, fmt.Errorf("%w: body: %w", ErrMalformed, err)
	}
	switch {
	case body.Format == 0:
		return Parsed{}, fmt.Errorf("%w: the body has no format", ErrMalformed)
	case body.Format > Format:
		return Parsed{Signed: &sr, Body: &body}, fmt.Errorf("%w: format %d, this build reads 1..%d", ErrUnsupportedFormat, body.Format, Format)
	}
	return Parsed{Signed: &sr, Body: &body}, nil
}

// Verify reports whether p's signature was made over its body by the
// private half of pub. It checks the bytes as received: a re-encoded body
// would not verify.
func Verify(p Parsed, pub ed25519.PublicKey) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, p.Signed.Body, p.Signed.Signature)
}

// PublicKey is the public half of a signing seed.
func PublicKey(seed []byte) ed25519.PublicKey {
	if len(seed) != ed25519.SeedSize {
		return nil
	}
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}
