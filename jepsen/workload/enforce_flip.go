package workload

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/jepsen/history"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// flip opts flipper k's share of the pool out and back in, one request at
// a time: an opt-out is a blind Set, a re-opt-in names the opt-out's
// version (deny wins: nothing else can replace an opt-out). After an
// unknown outcome or a conflict it reads the subject again first.
func (e *Enforce) flip(ctx context.Context, a *actor, k int) {
	var mine []string
	for i, s := range e.subjects {
		if i%e.cfg.Flippers == k {
			mine = append(mine, s)
		}
	}
	for a.pause(ctx, e.cfg.FlipEvery) {
		s := mine[a.rng.IntN(len(mine))]
		switch st := e.state(s); {
		case !st.known:
			e.readState(a, s)
		case st.out:
			e.optIn(a, s, st.version)
		default:
			e.optOut(a, s)
		}
	}
}

func (e *Enforce) state(s string) subjectState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.known[s]
}

func (e *Enforce) learn(s string, st subjectState) subjectState {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.known[s] = st
	return st
}

// optOut opts subject out and returns what is known afterwards.
func (e *Enforce) optOut(a *actor, subject string) subjectState {
	op, err := e.set(a, history.OptOut, subject, optoutv1.State_STATE_OPTED_OUT, nil)
	switch {
	case err == nil:
		return e.learn(subject, subjectState{known: true, out: true, version: op.Version})
	case op.Outcome == history.NotApplied:
		return e.state(subject)
	}
	return e.learn(subject, subjectState{})
}

// optIn re-opts subject in over the opt-out at version.
func (e *Enforce) optIn(a *actor, subject string, version uint64) {
	op, err := e.set(a, history.OptIn, subject, optoutv1.State_STATE_OPTED_IN, &version)
	switch {
	case err == nil:
		e.learn(subject, subjectState{known: true, version: op.Version})
	case op.Outcome != history.NotApplied:
		e.learn(subject, subjectState{})
	}
}

func (e *Enforce) set(a *actor, typ history.Type, subject string, state optoutv1.State, expected *uint64) (history.Op, error) {
	ctx, cancel := a.request()
	defer cancel()
	req := &optoutv1.SetRequest{SubjectId: subject, Purpose: EnforcePurpose, State: state, ExpectedVersion: expected,
		Source: fmt.Sprintf("enf-a%d", a.id), Reason: "jepsen enforce flip"}
	op := history.Op{Type: typ, Key: subject, State: stateName(state), Expected: expected, Call: e.rec.Now(),
		Enf: &history.Enforce{Purpose: EnforcePurpose}}
	resp, err := a.cl.Set(ctx, req)
	if err != nil {
		op.Outcome, op.Version = ClassifyWrite(err)
		op.Code, op.Error = codeOf(err), errText(err)
	} else {
		op.Outcome, op.Version = history.OK, resp.GetVersion()
	}
	a.record(op)
	return op, err
}

// readState learns subject's state with a Get.
func (e *Enforce) readState(a *actor, subject string) {
	ctx, cancel := a.request()
	defer cancel()
	op := history.Op{Type: history.StateRead, Key: subject, Call: e.rec.Now(), Enf: &history.Enforce{Purpose: EnforcePurpose}}
	resp, err := a.cl.Get(ctx, &optoutv1.GetRequest{SubjectId: subject, Purpose: EnforcePurpose})
	switch {
	case err == nil:
		r := resp.GetRecord()
		op.Outcome, op.State, op.Version = history.OK, stateName(r.GetState()), r.GetVersion()
		e.learn(subject, subjectState{known: true, out: r.GetState() == optoutv1.State_STATE_OPTED_OUT, version: r.GetVersion()})
	case connect.CodeOf(err) == connect.CodeNotFound:
		op.Outcome = history.NotFound
		e.learn(subject, subjectState{known: true})
	default:
		op.Outcome, op.Code, op.Error = history.Fail, codeOf(err), errText(err)
	}
	a.record(op)
}

// overrides opens an ALLOW override for one subject (preferably one that
// is opted out, so it matters) every OverrideEvery, each expiring a few
// seconds later, during the run. Overrides name single subjects only: a
// purpose-wide ALLOW would also excuse the sloppy service's unfenced
// processing, which must stay a violation.
func (e *Enforce) overrides(ctx context.Context, a *actor) {
	for a.pause(ctx, e.cfg.OverrideEvery) {
		subject := e.subjects[a.rng.IntN(len(e.subjects))]
		for range 4 {
			if e.state(subject).out {
				break
			}
			subject = e.subjects[a.rng.IntN(len(e.subjects))]
		}
		life := e.cfg.OverrideMin + time.Duration(a.rng.Int64N(int64(e.cfg.OverrideMax-e.cfg.OverrideMin)+1))
		e.override(a, subject, life)
	}
}

func (e *Enforce) override(a *actor, subject string, life time.Duration) {
	ctx, cancel := a.request()
	defer cancel()
	expires := time.Now().Add(life)
	op := history.Op{Type: history.Override, Key: subject, Call: e.rec.Now(),
		Enf: &history.Enforce{Purpose: EnforcePurpose, ExpiresAt: int64(expires.Sub(e.rec.Start()))}}
	o, err := a.cl.CreateOverride(ctx, &optoutv1.CreateOverrideRequest{SubjectId: subject, Purpose: EnforcePurpose,
		Effect: optoutv1.OverrideEffect_OVERRIDE_EFFECT_ALLOW, Reason: "jepsen enforce: a short break-glass",
		Owner: "jepsen", ExpiresAt: timestamppb.New(expires)})
	if err != nil {
		op.Outcome, _ = ClassifyWrite(err)
		op.Code, op.Error = codeOf(err), errText(err)
	} else {
		op.Outcome, op.Enf.OverrideID = history.OK, o.GetId()
	}
	a.record(op)
}
