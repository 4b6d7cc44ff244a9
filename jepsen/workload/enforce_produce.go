package workload

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/jepsen/history"
	"github.com/optoutd/optoutd/receipt"
	"google.golang.org/protobuf/proto"
)

// produce gates events onto the clean services' queues: mostly genuine
// ones, and now and then a false or a forged one.
func (e *Enforce) produce(ctx context.Context, a *actor) {
	for a.pause(ctx, e.cfg.Think) {
		switch r := a.rng.Float64(); {
		case r < 0.03:
			e.falseEvent(a, history.RoleFalseSubject)
		case r < 0.06:
			e.falseEvent(a, history.RoleFalsePurpose)
		case r < 0.14:
			e.forgedEvent(a, "")
		default:
			subject := e.subjects[a.rng.IntN(len(e.subjects))]
			if ev, ok := e.gate(a, history.RoleGenuine, subject, EnforcePurpose); ok {
				e.put(a, ev, "")
			}
		}
	}
}

// put addresses ev to service (a random clean one when empty) and queues it.
func (e *Enforce) put(a *actor, ev *Event, service string) {
	if service == "" {
		service = e.cfg.Services[a.rng.IntN(len(e.cfg.Services))]
	}
	ev.Service = service
	e.queues[service].Put(ev)
}

// gate asks for a decision with a receipt and records it; it returns the
// event, with its receipt, and whether the cluster said allow.
func (e *Enforce) gate(a *actor, role, subject, purpose string) (*Event, bool) {
	ev := &Event{ID: int(e.nextEvent.Add(1)), Role: role, Subject: subject, Purpose: purpose}
	ctx, cancel := a.request()
	defer cancel()
	op := history.Op{Type: history.Gate, Key: subject, Call: e.rec.Now(),
		Enf: &history.Enforce{Event: ev.ID, Role: role, Purpose: purpose}}
	d, err := a.cl.Gate(ctx, subject, purpose, client.WithReceipt())
	if err != nil {
		op.Outcome, op.Code, op.Error = history.Fail, codeOf(err), errText(err)
		a.record(op)
		return ev, false
	}
	op.Outcome = history.OK
	op.Enf.Allow, op.Enf.ReadIndex, op.Enf.OverrideID = d.Allow, d.Check.ReadIndex, d.Check.OverrideId
	op.Enf.ReceiptIndex = d.Check.ReadIndex
	a.record(op)
	ev.Receipt, ev.ReceiptIndex = d.Check.Receipt, d.Check.ReadIndex
	return ev, d.Allow && d.Check.Receipt != ""
}

// falseEvent gates an event the API must refuse and queues it anyway,
// without a receipt, as if injected behind the producer's back.
func (e *Enforce) falseEvent(a *actor, role string) {
	subject, purpose := falseSubjects[a.rng.IntN(len(falseSubjects))], EnforcePurpose
	if role == history.RoleFalsePurpose {
		subject, purpose = e.subjects[a.rng.IntN(len(e.subjects))], UndefinedPurpose
	}
	ev, _ := e.gate(a, role, subject, purpose)
	ev.Receipt, ev.ReceiptIndex = "", 0 // whatever the gate said, no receipt travels
	e.put(a, ev, "")
}

// forgedEvent takes a genuine allow receipt and queues an event carrying
// a forgery of it: to a clean service, or (service = sloppy) as a planted
// violation.
func (e *Enforce) forgedEvent(a *actor, service string) {
	subject := e.subjects[a.rng.IntN(len(e.subjects))]
	ev, ok := e.gate(a, history.RoleGenuine, subject, EnforcePurpose)
	if !ok {
		return
	}
	kinds := []string{history.RoleForgedBody, history.RoleForgedKey, history.RoleForgedUnknownKey, history.RoleForgedSubject}
	kind := kinds[a.rng.IntN(len(kinds))]
	forged, err := Forge(ev.Receipt, kind, a.rng)
	if err != nil {
		e.cfg.logf("cannot forge a receipt", "err", err)
		return
	}
	out := &Event{ID: int(e.nextEvent.Add(1)), Role: kind, Subject: subject, Purpose: EnforcePurpose, Receipt: forged, ReceiptIndex: ev.ReceiptIndex}
	if kind == history.RoleForgedSubject {
		out.Subject = e.otherSubject(a, subject)
	}
	if service == SloppyService {
		out.Role = history.RolePlantedForged
	}
	e.put(a, out, service)
}

func (e *Enforce) otherSubject(a *actor, s string) string {
	for {
		if o := e.subjects[a.rng.IntN(len(e.subjects))]; o != s {
			return o
		}
	}
}

// Forge turns a genuine receipt into a forgery of the given kind (a
// history Role): the body altered under the original signature, the body
// signed with a random key under the same key id or under one the cluster
// never had, or (RoleForgedSubject) the receipt unchanged, for the caller
// to attach to another subject's event.
func Forge(text, kind string, rng *rand.Rand) (string, error) {
	if kind == history.RoleForgedSubject {
		return text, nil
	}
	p, err := receipt.Parse(text)
	if err != nil {
		return "", fmt.Errorf("workload: forge: %w", err)
	}
	keyID, sig := p.Signed.KeyId, p.Signed.Signature
	switch kind {
	case history.RoleForgedBody:
		p.Body.ReadIndex += 1 + rng.Uint64N(1000) // pretend it was decided later
	case history.RoleForgedKey, history.RoleForgedUnknownKey:
		if kind == history.RoleForgedUnknownKey {
			keyID += 1000 + uint32(rng.IntN(1000))
		}
	default:
		return "", fmt.Errorf("workload: forge: %q is not a forgery", kind)
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(p.Body)
	if err != nil {
		return "", fmt.Errorf("workload: forge: %w", err)
	}
	if kind != history.RoleForgedBody {
		seed := make([]byte, ed25519.SeedSize)
		for i := range seed {
			seed[i] = byte(rng.UintN(256))
		}
		sig = ed25519.Sign(ed25519.NewKeyFromSeed(seed), body)
	}
	env, err := proto.Marshal(&optoutv1.SignedReceipt{Body: body, KeyId: keyID, Signature: sig})
	if err != nil {
		return "", fmt.Errorf("workload: forge: %w", err)
	}
	return receipt.Prefix + base64.RawURLEncoding.EncodeToString(env), nil
}

// plant queues the sloppy service's events, one kind after another: an
// event for a fresh subject that opts out (acknowledged) before the event
// is queued, which the sloppy service will process without a fence; an
// event it will report without its receipt; and one with a forged receipt.
func (e *Enforce) plant(ctx context.Context, a *actor) {
	for n := 0; a.pause(ctx, e.cfg.PlantEvery); n++ {
		switch n % 3 {
		case 0:
			subject := fmt.Sprintf("sloppy-%d", e.sloppyN.Add(1))
			ev, ok := e.gate(a, history.RolePlantedUnfenced, subject, EnforcePurpose)
			if !ok {
				continue
			}
			if e.optOutUntilAcked(ctx, a, subject) {
				e.put(a, ev, SloppyService)
			}
		case 1:
			subject := e.subjects[a.rng.IntN(len(e.subjects))]
			if ev, ok := e.gate(a, history.RolePlantedNoReceipt, subject, EnforcePurpose); ok {
				e.put(a, ev, SloppyService)
			}
		default:
			e.forgedEvent(a, SloppyService)
		}
	}
}

// optOutUntilAcked opts subject out until a Set is acknowledged (a few
// tries); only then is the planted violation certain.
func (e *Enforce) optOutUntilAcked(ctx context.Context, a *actor, subject string) bool {
	for try := 0; try < 5 && ctx.Err() == nil; try++ {
		if st := e.optOut(a, subject); st.known && st.out {
			return true
		}
		if !a.pause(ctx, 100*time.Millisecond) {
			return false
		}
	}
	return false
}

func (c EnforceConfig) logf(msg string, args ...any) {
	if c.Log != nil {
		c.Log.Warn(msg, args...)
	}
}
