package workload

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"testing"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/jepsen/history"
	"github.com/optoutd/optoutd/receipt"
)

func TestQueueDelaysDuplicatesAndRedelivers(t *testing.T) {
	cfg := QueueConfig{ShortMax: 5 * time.Millisecond, LongFrac: 0.2, LongMin: 20 * time.Millisecond, LongMax: 30 * time.Millisecond,
		DupFrac: 0.3, TripleFrac: 0.1, RedeliverMax: 2}
	q := NewQueue(cfg, 1)
	const events = 200
	for i := range events {
		q.Put(&Event{ID: i + 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := map[int]int{}
	st := q.Stats()
	for range events + st.Duplicates {
		d, ok := q.Take(ctx)
		if !ok {
			t.Fatal("the queue ended early")
		}
		seen[d.Event.ID]++
		if d.N < 1 || d.N > 3 {
			t.Fatalf("delivery %d of event %d: an event is put at most three times", d.N, d.Event.ID)
		}
	}
	if len(seen) != events || st.Duplicates == 0 || st.LongWaits == 0 || st.Events != events {
		t.Fatalf("%d events seen, stats %+v", len(seen), st)
	}
	twice := 0
	for _, n := range seen {
		if n > 1 {
			twice++
		}
	}
	if twice == 0 {
		t.Fatal("no event was delivered twice")
	}
	// A failed delivery comes back, up to RedeliverMax times.
	q.Put(&Event{ID: 999})
	var d *Delivery
	for {
		var ok bool
		if d, ok = q.Take(ctx); !ok {
			t.Fatal("ended")
		}
		if d.Event.ID == 999 && d.N == 1 {
			break
		}
	}
	if !q.Nack(d) {
		t.Fatal("the first redelivery was refused")
	}
	for {
		if d, _ = q.Take(ctx); d.Event.ID == 999 && d.N == 2 {
			break
		}
	}
	if !q.Nack(d) {
		t.Fatal("the second redelivery was refused")
	}
	for {
		if d, _ = q.Take(ctx); d.Event.ID == 999 && d.N == 3 {
			break
		}
	}
	if q.Nack(d) || q.Stats().GaveUp != 1 {
		t.Fatalf("redelivered past RedeliverMax: %+v", q.Stats())
	}
	// Close ends every Take, also a waiting one.
	done := make(chan bool)
	go func() { _, ok := q.Take(ctx); done <- ok }()
	q.Put(&Event{ID: 1000})
	q.Close()
	if <-done {
		// It may have taken the last event before Close; then the next
		// Take must end.
		if _, ok := q.Take(ctx); ok {
			t.Fatal("Take after Close returned a delivery")
		}
	}
	cctx, ccancel := context.WithCancel(context.Background())
	q2 := NewQueue(cfg, 2)
	q2.Put(&Event{ID: 1})
	ccancel() // due or not, a delivery must not come out after the end

	if _, ok := q2.Take(cctx); ok {
		t.Fatal("Take returned a delivery after its context ended")
	}
}

func TestForgeMakesReceiptsTheClusterRefuses(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	genuine, err := receipt.Sign(&optoutv1.DecisionReceipt{Format: receipt.Format, SubjectHash: bytes.Repeat([]byte{1}, 16),
		Purpose: EnforcePurpose, Decision: optoutv1.Decision_DECISION_ALLOW, ReadIndex: 42, NodeId: "n1"}, 1, seed)
	if err != nil {
		t.Fatal(err)
	}
	pub := receipt.PublicKey(seed)
	p, err := receipt.Parse(genuine)
	if err != nil || !receipt.Verify(p, pub) {
		t.Fatalf("the genuine receipt does not verify: %v", err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kind := range []string{history.RoleForgedBody, history.RoleForgedKey, history.RoleForgedUnknownKey} {
		forged, err := Forge(genuine, kind, rng)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		f, err := receipt.Parse(forged)
		if err != nil {
			t.Fatalf("%s: the forgery does not even parse: %v", kind, err)
		}
		if receipt.Verify(f, pub) {
			t.Fatalf("%s: the forgery verifies under the cluster's key", kind)
		}
		switch kind {
		case history.RoleForgedBody:
			if f.Signed.KeyId != 1 || f.Body.ReadIndex == 42 || !bytes.Equal(f.Signed.Signature, p.Signed.Signature) {
				t.Fatalf("altered body: %v", f)
			}
		case history.RoleForgedKey:
			if f.Signed.KeyId != 1 || f.Body.ReadIndex != 42 {
				t.Fatalf("random key: %v", f)
			}
		default:
			if f.Signed.KeyId == 1 {
				t.Fatalf("unknown key: %v", f)
			}
		}
	}
	if same, err := Forge(genuine, history.RoleForgedSubject, rng); err != nil || same != genuine {
		t.Fatalf("another subject's receipt travels unchanged: %v", err)
	}
	if _, err := Forge(genuine, history.RoleGenuine, rng); err == nil {
		t.Fatal("a genuine role was forged")
	}
}

func TestEnforceConfigValidate(t *testing.T) {
	eps := []Endpoint{{Node: "n1", Addr: "127.0.0.1:1"}}
	if err := DefaultEnforceConfig(eps, 1).Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*EnforceConfig){
		"no endpoints":     func(c *EnforceConfig) { c.Endpoints = nil },
		"one subject":      func(c *EnforceConfig) { c.Subjects = 1 },
		"no producer":      func(c *EnforceConfig) { c.Producers = 0 },
		"flippers":         func(c *EnforceConfig) { c.Flippers = 100 },
		"sloppy clean":     func(c *EnforceConfig) { c.Services = []string{SloppyService} },
		"override max<min": func(c *EnforceConfig) { c.OverrideMax = time.Millisecond },
	} {
		c := DefaultEnforceConfig(eps, 1)
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
