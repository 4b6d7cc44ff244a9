package api

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/receipt"
)

// receipts signs Check decisions and verifies receipts against the
// replicated key set. The keys' seeds are read from state on every use, so
// a rotation applies on the next decision of every node.
type receipts struct {
	store  Store
	nodeID string
}

// signingKey is the current key and the subject's hash, read in the same
// view as the decision they go with.
type signingKey struct {
	key  optoutd.ReceiptKey
	hash []byte
}

// seedLookup finds receipt signing seeds in v.
func seedLookup(v optoutd.View) receipt.KeyLookup {
	return func(id uint32) ([]byte, bool, error) {
		k, ok, err := v.ReceiptKey(id)
		return k.Seed, ok, err
	}
}

// signingKeys reads the current key once and hashes each key's subject.
func signingKeys(v optoutd.View, keys []optoutd.Key) ([]signingKey, bool, error) {
	cur, ok, err := v.CurrentReceiptKey()
	if err != nil || !ok {
		return nil, false, err
	}
	out := make([]signingKey, len(keys))
	for i, k := range keys {
		out[i] = signingKey{key: cur, hash: v.ReceiptSubjectHash(k.SubjectID)}
	}
	return out, true, nil
}

// ensureKey creates the cluster's first receipt key when it has none: the
// first receipt asked for creates it, so a cluster that never uses receipts
// never writes a format-4 command (see docs/operations.md on upgrades).
func (r *receipts) ensureKey(ctx context.Context) error {
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return fmt.Errorf("receipt key seed: %w", err)
	}
	c := callOf(ctx)
	_, err := r.store.RotateReceiptKey(ctx, seed, true, c.schema, c.caller)
	return err
}

// sign issues the receipt of one decision made at readIndex.
func (r *receipts) sign(sk signingKey, k optoutd.Key, res optoutd.CheckResult, readIndex uint64) (string, error) {
	return receipt.Sign(&optoutv1.DecisionReceipt{
		SubjectHash:       sk.hash,
		Purpose:           k.Purpose,
		Decision:          optoutv1.Decision(res.Decision),
		RecordVersion:     res.Version,
		ReadIndex:         readIndex,
		NodeId:            r.nodeID,
		IssuedAtUnixNanos: time.Now().UnixNano(),
		OverrideId:        res.OverrideID,
	}, sk.key.ID, sk.key.Seed)
}

// verification is what verifying a receipt for a subject found.
type verification struct {
	out    *optoutv1.VerifyReceiptResponse
	parsed receipt.Parsed
}

func (v verification) valid() bool {
	return v.out.Status == optoutv1.ReceiptStatus_RECEIPT_STATUS_VALID
}

// verify checks text for subject at a linearizable read and, when valid,
// compares with the subject's state now.
func (r *receipts) verify(ctx context.Context, text, subject string) (verification, error) {
	if err := optoutd.ValidateSubjectID(subject); err != nil {
		return verification{}, err
	}
	if len(text) > receipt.MaxLen {
		return verification{}, optoutd.Errorf(optoutd.Invalid, "receipt: %d bytes, the limit is %d", len(text), receipt.MaxLen)
	}
	out := &optoutv1.VerifyReceiptResponse{}
	p, perr := receipt.Parse(text)
	out.Receipt = p.Body
	if perr != nil {
		out.Status, out.Problem = optoutv1.ReceiptStatus_RECEIPT_STATUS_MALFORMED, perr.Error()
		if p.Body != nil {
			out.Status = optoutv1.ReceiptStatus_RECEIPT_STATUS_UNSUPPORTED_FORMAT
		}
		return verification{out: out, parsed: p}, nil
	}
	// The index of the state judged (see read in read.go): a consumer
	// reports it as processed_version, so it must be exactly that state.
	if _, err := r.store.Read(ctx, func(v optoutd.View) error {
		out.ReadIndex = v.AppliedIndex()
		return judgeReceipt(v, p, subject, out)
	}); err != nil {
		return verification{}, err
	}
	return verification{out: out, parsed: p}, nil
}

func judgeReceipt(v optoutd.View, p receipt.Parsed, subject string, out *optoutv1.VerifyReceiptResponse) error {
	status, problem, err := receipt.CheckParsed(p, v.ReceiptSubjectHash(subject), seedLookup(v))
	if err != nil || status != optoutv1.ReceiptStatus_RECEIPT_STATUS_VALID {
		out.Status, out.Problem = status, problem
		return err
	}
	k := optoutd.Key{SubjectID: subject, Purpose: p.Body.Purpose}
	now, err := decideNow(v, k)
	if err != nil {
		return err
	}
	out.Status = status
	out.CurrentDecision, out.CurrentVersion = optoutv1.Decision(now.Decision), now.Version
	out.ChangedAtVersion, err = firstChangeAfter(v, k, p.Body.ReadIndex)
	out.Changed = out.ChangedAtVersion != 0
	return err
}

// firstChangeAfter is the oldest change to k's purpose or to the subject's
// "all" record with a version above after (0: none). History pages run
// newest first, so it walks back until it passes after.
func firstChangeAfter(v optoutd.View, k optoutd.Key, after uint64) (uint64, error) {
	var first, before uint64
	for {
		page, err := v.History(k.SubjectID, "", before, optoutd.MaxHistoryPage)
		if err != nil {
			return 0, err
		}
		for _, e := range page {
			if e.Version <= after {
				return first, nil
			}
			if e.Purpose == k.Purpose || e.Purpose == optoutd.AllPurposes {
				first = e.Version
			}
			before = e.Version
		}
		if len(page) < optoutd.MaxHistoryPage {
			return first, nil
		}
	}
}
