package receipt

import (
	"bytes"
	"errors"
	"testing"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// TestCheckParsed: each way a receipt can fail has its status, and a key
// lookup that fails is an error, never a verdict about the receipt.
func TestCheckParsed(t *testing.T) {
	text, _ := Sign(body(), 3, seed)
	p, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	have := func(id uint32) ([]byte, bool, error) { return seed, id == 3, nil }
	other := func(uint32) ([]byte, bool, error) { return bytes.Repeat([]byte{8}, 32), true, nil }
	broken := func(uint32) ([]byte, bool, error) { return nil, false, errors.New("disk") }
	hash := body().SubjectHash
	cases := []struct {
		name   string
		hash   []byte
		lookup KeyLookup
		want   optoutv1.ReceiptStatus
	}{
		{"genuine", hash, have, optoutv1.ReceiptStatus_RECEIPT_STATUS_VALID},
		{"another subject", []byte("someone else...."), have, optoutv1.ReceiptStatus_RECEIPT_STATUS_WRONG_SUBJECT},
		{"another key under its id", hash, other, optoutv1.ReceiptStatus_RECEIPT_STATUS_BAD_SIGNATURE},
		{"a key never had", hash, func(uint32) ([]byte, bool, error) { return nil, false, nil }, optoutv1.ReceiptStatus_RECEIPT_STATUS_UNKNOWN_KEY},
	}
	for _, c := range cases {
		st, problem, err := CheckParsed(p, c.hash, c.lookup)
		if err != nil || st != c.want || (st != optoutv1.ReceiptStatus_RECEIPT_STATUS_VALID && problem == "") {
			t.Errorf("%s: %v %q %v, want %v", c.name, st, problem, err, c.want)
		}
	}
	if _, _, err := CheckParsed(p, hash, broken); err == nil {
		t.Fatal("a failed key lookup was a verdict, not an error")
	}
}
