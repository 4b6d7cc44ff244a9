package receipt

import (
	"crypto/hmac"
	"fmt"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// KeyLookup returns the signing seed of a key id, and false when the
// cluster never had that key.
type KeyLookup func(id uint32) (seed []byte, ok bool, err error)

// CheckParsed decides whether a parsed receipt is genuine and was issued
// for the subject whose receipt hash is subjectHash: signed by a key the
// cluster has (looked up with key) over exactly its body. It returns
// RECEIPT_STATUS_VALID, or the status that failed and why in words; an
// error only when the lookup failed. The API's VerifyReceipt and the judge
// of processing reports both decide with it.
func CheckParsed(p Parsed, subjectHash []byte, key KeyLookup) (optoutv1.ReceiptStatus, string, error) {
	seed, ok, err := key(p.Signed.KeyId)
	switch {
	case err != nil:
		return optoutv1.ReceiptStatus_RECEIPT_STATUS_UNSPECIFIED, "", err
	case !ok:
		return optoutv1.ReceiptStatus_RECEIPT_STATUS_UNKNOWN_KEY,
			fmt.Sprintf("signed by key %d, which this cluster never had", p.Signed.KeyId), nil
	case !Verify(p, PublicKey(seed)):
		return optoutv1.ReceiptStatus_RECEIPT_STATUS_BAD_SIGNATURE,
			fmt.Sprintf("the signature does not match the content under key %d: the receipt was forged or altered", p.Signed.KeyId), nil
	case !hmac.Equal(subjectHash, p.Body.SubjectHash):
		return optoutv1.ReceiptStatus_RECEIPT_STATUS_WRONG_SUBJECT, "the receipt is genuine but was issued for another subject", nil
	}
	return optoutv1.ReceiptStatus_RECEIPT_STATUS_VALID, "", nil
}
