package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/receipt"
	"google.golang.org/protobuf/proto"
)

// resign re-encodes a receipt after mutate changed its body, keeping the
// original signature (an altered receipt) unless seed is set (a receipt
// forged with a key the cluster never had), under key id keyID.
func resign(t *testing.T, text string, keyID uint32, seed []byte, mutate func(*optoutv1.DecisionReceipt)) string {
	t.Helper()
	p, err := receipt.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	mutate(p.Body)
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(p.Body)
	if err != nil {
		t.Fatal(err)
	}
	sig := p.Signed.Signature
	if seed != nil {
		sig = ed25519.Sign(ed25519.NewKeyFromSeed(seed), body)
	}
	env, err := proto.Marshal(&optoutv1.SignedReceipt{Body: body, KeyId: keyID, Signature: sig})
	if err != nil {
		t.Fatal(err)
	}
	return receipt.Prefix + base64.RawURLEncoding.EncodeToString(env)
}

// TestReceiptsAndFencingEndToEnd: against three real processes, a Gate
// with a receipt, the receipt verified on another node, forged and altered
// receipts refused with their reasons, an opt-out that makes the fence
// discard an event queued before it, key rotation that keeps old receipts
// verifiable, and the discard counts in the API and in /metrics.
func TestReceiptsAndFencingEndToEnd(t *testing.T) {
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := pc.all()
	const subject, purpose = "rcpt-u1", "analytics"

	d, err := c.Gate(ctx, subject, purpose, client.WithReceipt())
	if err != nil || !d.Allow || d.Check.Receipt == "" {
		t.Fatalf("gate with receipt: %+v, %v", d, err)
	}
	issued := d.Check.Receipt
	p, err := receipt.Parse(issued)
	if err != nil {
		t.Fatal(err)
	}
	if p.Body.ReadIndex != d.Check.ReadIndex || p.Body.Purpose != purpose || p.Body.NodeId == "" ||
		bytes.Contains([]byte(issued), []byte(subject)) || len(p.Body.SubjectHash) != 16 {
		t.Fatalf("receipt body %v (read index %d)", p.Body, d.Check.ReadIndex)
	}
	t.Logf("a receipt is %d bytes", len(issued))

	// Verified through every node, whichever issued it.
	for _, node := range pc.procs {
		v, err := pc.clientOf(node).VerifyReceipt(ctx, issued, subject)
		if err != nil || v.Status != optoutv1.ReceiptStatus_RECEIPT_STATUS_VALID || v.Changed ||
			v.CurrentDecision != optoutv1.Decision_DECISION_ALLOW {
			t.Fatalf("%s verifies a fresh receipt as %v, %v", node.id, v, err)
		}
	}

	t.Run("bad receipts are refused with their reason", func(t *testing.T) {
		other := bytes.Repeat([]byte{9}, 32)
		cases := []struct {
			name, text, subject string
			want                optoutv1.ReceiptStatus
			problem             string
		}{
			{"altered decision", resign(t, issued, p.Signed.KeyId, nil, func(b *optoutv1.DecisionReceipt) {
				b.Decision = optoutv1.Decision_DECISION_DENY
			}), subject, optoutv1.ReceiptStatus_RECEIPT_STATUS_BAD_SIGNATURE, "forged or altered"},
			{"altered read index", resign(t, issued, p.Signed.KeyId, nil, func(b *optoutv1.DecisionReceipt) { b.ReadIndex += 1000 }),
				subject, optoutv1.ReceiptStatus_RECEIPT_STATUS_BAD_SIGNATURE, "forged or altered"},
			{"forged with another key", resign(t, issued, p.Signed.KeyId, other, func(*optoutv1.DecisionReceipt) {}),
				subject, optoutv1.ReceiptStatus_RECEIPT_STATUS_BAD_SIGNATURE, "forged or altered"},
			{"unknown key", resign(t, issued, 77, other, func(*optoutv1.DecisionReceipt) {}),
				subject, optoutv1.ReceiptStatus_RECEIPT_STATUS_UNKNOWN_KEY, "key 77"},
			{"another subject", issued, "rcpt-someone-else", optoutv1.ReceiptStatus_RECEIPT_STATUS_WRONG_SUBJECT, "another subject"},
			{"not a receipt", "hello", subject, optoutv1.ReceiptStatus_RECEIPT_STATUS_MALFORMED, "does not start with"},
			{"newer format", resign(t, issued, p.Signed.KeyId, nil, func(b *optoutv1.DecisionReceipt) { b.Format = 2 }),
				subject, optoutv1.ReceiptStatus_RECEIPT_STATUS_UNSUPPORTED_FORMAT, "format 2"},
		}
		for _, tc := range cases {
			v, err := c.VerifyReceipt(ctx, tc.text, tc.subject)
			if err != nil || v.Status != tc.want || !strings.Contains(v.Problem, tc.problem) {
				t.Errorf("%s: %v %q, %v; want %v mentioning %q", tc.name, v.GetStatus(), v.GetProblem(), err, tc.want, tc.problem)
			}
			f, err := c.Fence(ctx, "mailer", tc.text, tc.subject)
			if err != nil || f.Process || f.Answer.Reason != optoutv1.DiscardReason_DISCARD_REASON_INVALID_RECEIPT {
				t.Errorf("%s: the fence answered %+v, %v", tc.name, f, err)
			}
		}
		_, err := c.VerifyReceipt(ctx, strings.Repeat("x", receipt.MaxLen+1), subject)
		wantCode(t, err, connect.CodeInvalidArgument, "receipt: 1025 bytes, the limit is 1024")
		_, err = c.ShouldProcess(ctx, "Bad Service", issued, subject)
		wantCode(t, err, connect.CodeInvalidArgument, "service:")
		_, err = c.VerifyReceipt(ctx, issued, "")
		wantCode(t, err, connect.CodeInvalidArgument, "subject")
	})

	// A queued event: processed while the subject allows, discarded once
	// the subject opts out, even though its receipt said allow.
	ran := 0
	if f, err := c.ProcessFenced(ctx, "mailer", issued, subject, func(context.Context) error { ran++; return nil }); err != nil || !f.Process || ran != 1 {
		t.Fatalf("fence before the opt-out: %+v, %v (ran %d)", f, err, ran)
	}
	out := mustSet(t, c, subject, purpose, optoutv1.State_STATE_OPTED_OUT, nil)
	f, err := c.ProcessFenced(ctx, "mailer", issued, subject, func(context.Context) error { ran++; return nil })
	if err != nil || f.Process || ran != 1 || f.Answer.Reason != optoutv1.DiscardReason_DISCARD_REASON_DENIED_NOW ||
		!f.Answer.Verification.Changed || f.Answer.Verification.ChangedAtVersion != out.Version {
		t.Fatalf("fence after the opt-out at %d: %+v, %v (ran %d)", out.Version, f.Answer, err, ran)
	}
	denied, err := c.Gate(ctx, subject, purpose, client.WithReceipt())
	if err != nil || denied.Allow {
		t.Fatalf("gate after the opt-out: %+v, %v", denied, err)
	}
	if f, err := c.Fence(ctx, "mailer", denied.Check.Receipt, subject); err != nil || f.Process ||
		f.Answer.Reason != optoutv1.DiscardReason_DISCARD_REASON_DENIED_AT_RECEIPT {
		t.Fatalf("fence of a deny receipt: %+v, %v", f, err)
	}

	t.Run("rotation keeps old receipts verifiable", func(t *testing.T) {
		r, err := c.RotateReceiptKey(ctx)
		if err != nil || r.Key.KeyId != p.Signed.KeyId+1 || r.Key.CreatedAt == nil || r.Key.CreatedAt.AsTime().IsZero() {
			t.Fatalf("rotate: %v, %v", r, err)
		}
		keys, err := c.ListReceiptKeys(ctx)
		if err != nil || len(keys.Keys) != 2 || !keys.Keys[0].Current || keys.Keys[1].Current || !bytes.Equal(keys.Keys[0].PublicKey, r.Key.PublicKey) {
			t.Fatalf("keys after a rotation: %v, %v", keys, err)
		}
		if v, err := c.VerifyReceipt(ctx, issued, subject); err != nil || v.Status != optoutv1.ReceiptStatus_RECEIPT_STATUS_VALID {
			t.Fatalf("a receipt of the old key: %v, %v", v, err)
		}
		d, err := c.Gate(ctx, "rcpt-u2", purpose, client.WithReceipt())
		if err != nil {
			t.Fatal(err)
		}
		np, err := receipt.Parse(d.Check.Receipt)
		if err != nil || np.Signed.KeyId != r.Key.KeyId || !receipt.Verify(np, keys.Keys[0].PublicKey) {
			t.Fatalf("a new receipt is not signed by the new key: %v, %v", np.Signed, err)
		}
	})

	t.Run("discards are counted per service and purpose", func(t *testing.T) {
		var discards, processed uint64
		for i := range pc.procs {
			st, err := c.FenceStatsOf(ctx, i)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range st.Counts {
				if n.Service != "mailer" {
					continue
				}
				if n.Verdict == optoutv1.Verdict_VERDICT_PROCESS && n.Purpose == purpose {
					processed += n.Count
				}
				if n.Verdict == optoutv1.Verdict_VERDICT_DISCARD {
					discards += n.Count
				}
			}
		}
		// 7 bad receipts, one denied now, one denied at the receipt.
		if processed != 1 || discards != 9 {
			t.Fatalf("fence counts over the cluster: %d processed, %d discarded; want 1 and 9", processed, discards)
		}
		found := false
		for _, node := range pc.procs {
			resp, err := http.Get("http://" + node.api + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			found = found || bytes.Contains(b, []byte(`optoutd_fence_verdicts_total{purpose="analytics",reason="denied_now",service="mailer",verdict="discard"} 1`))
		}
		if !found {
			t.Fatal("no node's /metrics shows the discard")
		}
	})
}
