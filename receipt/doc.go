// Package receipt encodes, signs and checks decision receipts: the compact,
// Ed25519-signed proof of one Check decision that a service attaches to the
// event it processed (see docs/enforcement.md).
//
// A receipt is the text "optr1." followed by the unpadded base64url form of
// an optout.v1.SignedReceipt, whose body is a deterministically marshalled
// optout.v1.DecisionReceipt. The prefix names the envelope; the body's
// format field names its layout, so a later layout can be added while every
// receipt ever issued still parses and verifies. The package holds no keys
// and does no I/O: the server signs with the cluster's current key and
// verifies with whichever key a receipt names.
package receipt
