package checker

import (
	"strings"
	"testing"
	"time"

	"github.com/optoutd/optoutd/jepsen/history"
)

// eh builds enforcement histories by hand; times are in seconds.
type eh struct {
	ops []history.Op
	ev  int
}

func ns(s float64) int64 { return int64(s * 1e9) }

func (h *eh) add(op history.Op) int {
	op.Index = len(h.ops)
	h.ops = append(h.ops, op)
	return op.Index
}

func (h *eh) write(typ history.Type, subject string, call, ret float64, out history.Outcome, version uint64) int {
	return h.add(history.Op{Type: typ, Key: subject, Call: ns(call), Return: ns(ret), Outcome: out, Version: version, Enf: &history.Enforce{}})
}

func (h *eh) override(subject string, call, ret float64, out history.Outcome, expires float64) int {
	return h.add(history.Op{Type: history.Override, Key: subject, Call: ns(call), Return: ns(ret), Outcome: out,
		Enf: &history.Enforce{ExpiresAt: ns(expires)}})
}

// fence records a fence of a new event; verdict "" is a fence that failed.
func (h *eh) fence(service, role, subject string, call, ret float64, verdict, reason string, readIndex, receiptIndex uint64) int {
	h.ev++
	op := history.Op{Type: history.Fence, Key: subject, Call: ns(call), Return: ns(ret), Outcome: history.OK,
		Enf: &history.Enforce{Event: h.ev, Delivery: 1, Role: role, Service: service, Verdict: verdict, Reason: reason,
			ReadIndex: readIndex, CurrentVersion: readIndex, ReceiptIndex: receiptIndex, Processed: verdict == "process"}}
	if verdict == "" {
		op.Outcome = history.Fail
	}
	return h.add(op)
}

func (h *eh) process(service, role, subject string, at float64) int {
	h.ev++
	return h.add(history.Op{Type: history.Process, Key: subject, Call: ns(at), Return: ns(at), Outcome: history.OK,
		Enf: &history.Enforce{Event: h.ev, Delivery: 1, Role: role, Service: service, Processed: true}})
}

func (h *eh) gate(role, subject string, out history.Outcome, allow bool) int {
	h.ev++
	return h.add(history.Op{Type: history.Gate, Key: subject, Call: ns(0.1), Return: ns(0.2), Outcome: out,
		Enf: &history.Enforce{Event: h.ev, Role: role, Allow: allow}})
}

// report gives each processing op the verdict kind ("" = clean).
func (h *eh) report(service string, out history.Outcome, kinds map[int]string) {
	op := history.Op{Type: history.Report, Key: service, Call: ns(50), Return: ns(50.1), Outcome: out, Enf: &history.Enforce{Service: service}}
	for i, k := range kinds {
		e := history.ReportEntry{Op: i, Kind: k, Evidence: "because"}
		if k != "" {
			e.ViolationID = uint64(1000 + i)
		}
		op.Enf.Reports = append(op.Enf.Reports, e)
	}
	h.add(op)
}

// list records the final listing of service's stored violations.
func (h *eh) list(service string, out history.Outcome, ids ...uint64) {
	h.add(history.Op{Type: history.ListViolations, Key: service, Final: true, Call: ns(60), Return: ns(60.1), Outcome: out,
		Enf: &history.Enforce{Service: service, Stored: ids}})
}

// base is a healthy history: a clean processing reported clean, a
// discard for an opt-out made while the event waited, a refused forgery
// and a planted violation judged one.
func base() *eh {
	h := &eh{}
	h.write(history.OptOut, "s9", 1, 1.1, history.OK, 40)
	h.fence("svc", history.RoleGenuine, "s9", 2, 2.1, "discard", "denied_now", 41, 30)
	h.fence("svc", history.RoleForgedKey, "s8", 2, 2.1, "discard", "invalid_receipt", 41, 30)
	clean := h.fence("svc", history.RoleGenuine, "s7", 3, 3.1, "process", "", 45, 44)
	planted := h.process("sloppy", history.RolePlantedNoReceipt, "s7", 4)
	h.report("svc", history.OK, map[int]string{clean: ""})
	h.report("sloppy", history.OK, map[int]string{planted: "VIOLATION_KIND_NO_RECEIPT"})
	return h
}

func check(h *eh, mut ...func(*EnforceOptions)) EnforceResult {
	opt := DefaultEnforceOptions("sloppy")
	for _, m := range mut {
		m(&opt)
	}
	return CheckEnforce(h.ops, opt)
}

func wantOnly(t *testing.T, res EnforceResult, typ string) {
	t.Helper()
	if typ == "" {
		if !res.Valid {
			t.Fatalf("want valid, got %v %+v", res.Counts, res.Findings)
		}
		return
	}
	if res.Valid || res.Counts[typ] == 0 || len(res.Counts) != 1 {
		t.Fatalf("want only %s, got %v %+v", typ, res.Counts, res.Findings)
	}
}

func TestEnforceBaseIsValid(t *testing.T) {
	res := check(base())
	wantOnly(t, res, "")
	if res.Processed != 1 || res.Planted != 1 || res.PlantedFlagged != 1 || res.ForgedRefused != 1 || res.Discarded["denied_now"] != 1 ||
		res.CleanReports != 1 || res.OptOuts != 1 || res.Events != 4 {
		t.Fatalf("counts: %+v", res)
	}
}

// An event fenced PROCESS at [2, 2.1] s after an opt-out acknowledged at
// 1.1 s, with whatever else the case adds.
func TestEnforceProcessedAfterOptOut(t *testing.T) {
	cases := []struct {
		name    string
		add     func(h *eh)
		skew    time.Duration
		outcome history.Outcome // of the opt-out
		want    string
	}{
		{"nothing excuses it", nil, time.Second, history.OK, EnfAfterOptOut},
		{"the opt-out's outcome is unknown: not acknowledged", nil, time.Second, history.Unknown, ""},
		{"re-opted in before the fence", func(h *eh) { h.write(history.OptIn, "u", 1.5, 1.6, history.OK, 51) }, time.Second, history.OK, ""},
		{"a re-opt-in of unknown outcome", func(h *eh) { h.write(history.OptIn, "u", 1.9, 7, history.Unknown, 0) }, time.Second, history.OK, ""},
		{"re-opted in concurrently with the fence", func(h *eh) { h.write(history.OptIn, "u", 2.05, 2.3, history.OK, 52) }, time.Second, history.OK, ""},
		{"re-opted in only after the fence", func(h *eh) { h.write(history.OptIn, "u", 2.2, 2.3, history.OK, 52) }, time.Second, history.OK, EnfAfterOptOut},
		{"the re-opt-in returned before the opt-out began", func(h *eh) { h.write(history.OptIn, "u", 0.5, 0.6, history.OK, 9) }, time.Second, history.OK, EnfAfterOptOut},
		{"a refused re-opt-in", func(h *eh) { h.write(history.OptIn, "u", 1.5, 1.6, history.Mismatch, 50) }, time.Second, history.OK, EnfAfterOptOut},
		{"another subject's re-opt-in", func(h *eh) { h.write(history.OptIn, "v", 1.5, 1.6, history.OK, 51) }, time.Second, history.OK, EnfAfterOptOut},
		{"an ALLOW override in force", func(h *eh) { h.override("u", 1.2, 1.3, history.OK, 5) }, time.Second, history.OK, ""},
		{"an override of unknown outcome", func(h *eh) { h.override("u", 1.2, 6, history.Unknown, 5) }, time.Second, history.OK, ""},
		{"an override created after the fence", func(h *eh) { h.override("u", 2.2, 2.3, history.OK, 5) }, time.Second, history.OK, EnfAfterOptOut},
		{"an override that certainly did not apply", func(h *eh) { h.override("u", 1.2, 1.3, history.NotApplied, 5) }, time.Second, history.OK, EnfAfterOptOut},
		{"an override that expired before the fence, beyond the skew", func(h *eh) { h.override("u", 0.2, 0.3, history.OK, 1.5) }, 100 * time.Millisecond, history.OK, EnfAfterOptOut},
		{"... but within one second of skew", func(h *eh) { h.override("u", 0.2, 0.3, history.OK, 1.5) }, time.Second, history.OK, ""},
		{"a re-opt-in excuses only the opt-out it follows", func(h *eh) {
			h.write(history.OptIn, "u", 1.2, 1.3, history.OK, 51)
			h.write(history.OptOut, "u", 1.4, 1.5, history.OK, 52)
		}, time.Second, history.OK, EnfAfterOptOut},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := base()
			h.write(history.OptOut, "u", 1, 1.1, c.outcome, 50)
			if c.add != nil {
				c.add(h)
			}
			p := h.fence("svc", history.RoleGenuine, "u", 2, 2.1, "process", "", 60, 20)
			h.report("svc", history.OK, map[int]string{p: ""})
			res := check(h, func(o *EnforceOptions) { o.Skew = c.skew })
			wantOnly(t, res, c.want)
			if c.want != "" && !strings.Contains(res.Findings[0].Detail, "was acknowledged at 1.") {
				t.Fatalf("finding does not say when: %s", res.Findings[0].Detail)
			}
		})
	}
}

func TestEnforceOptOutAcknowledgedDuringTheFence(t *testing.T) {
	// The fence may have read before the opt-out took effect.
	h := base()
	h.write(history.OptOut, "u", 1.9, 2.05, history.OK, 50)
	h.report("svc", history.OK, map[int]string{h.fence("svc", history.RoleGenuine, "u", 2, 2.1, "process", "", 49, 20): ""})
	wantOnly(t, check(h), "")
	// Acknowledged before it started: a violation.
	h = base()
	h.write(history.OptOut, "u", 1.9, 1.99, history.OK, 50)
	h.report("svc", history.OK, map[int]string{h.fence("svc", history.RoleGenuine, "u", 2, 2.1, "process", "", 51, 20): ""})
	wantOnly(t, check(h), EnfAfterOptOut)
}

func TestEnforceFailClosedAndDiscardsAreNotProcessing(t *testing.T) {
	h := base()
	h.write(history.OptOut, "u", 1, 1.1, history.OK, 50)
	h.fence("svc", history.RoleGenuine, "u", 2, 2.1, "", "", 0, 20)
	h.fence("svc", history.RoleGenuine, "u", 2, 2.1, "discard", "denied_now", 60, 20)
	res := check(h)
	wantOnly(t, res, "")
	if res.FencesFailed != 1 || res.Discarded["denied_now"] != 2 {
		t.Fatalf("%+v", res)
	}
}

func TestEnforceUnfencedProcessingAfterOptOut(t *testing.T) {
	h := base()
	h.write(history.OptOut, "u", 1, 1.1, history.OK, 50)
	p := h.process("svc", history.RoleGenuine, "u", 2)
	h.report("svc", history.OK, map[int]string{p: "VIOLATION_KIND_RECEIPT_BEFORE_OPT_OUT"})
	res := check(h, func(o *EnforceOptions) { o.Fencing = false })
	wantOnly(t, res, EnfAfterOptOut)
	if !res.Caught() || res.UnfencedFlagged != 1 {
		t.Fatalf("%+v", res)
	}
	// Processed while the opt-out was in flight: not a violation.
	h = base()
	h.write(history.OptOut, "u", 1, 2.5, history.OK, 50)
	h.report("svc", history.OK, map[int]string{h.process("svc", history.RoleGenuine, "u", 2): ""})
	wantOnly(t, check(h, func(o *EnforceOptions) { o.Fencing = false }), "")
}

func TestEnforceVerdicts(t *testing.T) {
	t.Run("a planted violation judged clean", func(t *testing.T) {
		h := base()
		h.report("sloppy", history.OK, map[int]string{h.process("sloppy", history.RolePlantedUnfenced, "sloppy-1", 5): ""})
		wantOnly(t, check(h), EnfPlantedMissed)
	})
	t.Run("judged clean once and flagged once", func(t *testing.T) {
		h := base()
		p := h.process("sloppy", history.RolePlantedForged, "s1", 5)
		h.report("sloppy", history.OK, map[int]string{p: "VIOLATION_KIND_INVALID_RECEIPT"})
		h.report("sloppy", history.OK, map[int]string{p: ""})
		wantOnly(t, check(h), EnfPlantedMissed)
	})
	t.Run("a verdict of a batch with an unknown outcome does not count", func(t *testing.T) {
		h := base()
		p := h.process("sloppy", history.RolePlantedForged, "s1", 5)
		h.report("sloppy", history.Unknown, map[int]string{p: ""})
		h.report("sloppy", history.OK, map[int]string{p: "VIOLATION_KIND_INVALID_RECEIPT"})
		wantOnly(t, check(h), "")
	})
	t.Run("a clean report flagged", func(t *testing.T) {
		h := base()
		h.report("svc", history.OK, map[int]string{h.fence("svc", history.RoleGenuine, "s3", 5, 5.1, "process", "", 70, 69): "VIOLATION_KIND_NO_RECEIPT"})
		wantOnly(t, check(h), EnfCleanFlagged)
	})
	t.Run("the negative control's flagged reports are counted, not anomalies", func(t *testing.T) {
		h := base()
		h.report("svc", history.OK, map[int]string{h.process("svc", history.RoleGenuine, "s3", 5): "VIOLATION_KIND_NO_RECEIPT"})
		res := check(h, func(o *EnforceOptions) { o.Fencing = false })
		wantOnly(t, res, "")
		if res.UnfencedFlagged != 1 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("unreported", func(t *testing.T) {
		h := base()
		h.fence("svc", history.RoleGenuine, "s3", 5, 5.1, "process", "", 70, 69)
		h.process("sloppy", history.RolePlantedUnfenced, "sloppy-2", 6)
		res := check(h)
		wantOnly(t, res, EnfUnreported)
		if res.Counts[EnfUnreported] != 2 {
			t.Fatalf("%+v", res.Counts)
		}
		wantOnly(t, check(h, func(o *EnforceOptions) { o.Interrupted = true }), "")
	})
}

func TestEnforceForgedAndFalseEvents(t *testing.T) {
	cases := []struct {
		name string
		add  func(h *eh)
		want string
	}{
		{"a forged receipt fenced PROCESS", func(h *eh) {
			h.report("svc", history.OK, map[int]string{h.fence("svc", history.RoleForgedBody, "s1", 5, 5.1, "process", "", 70, 69): ""})
		}, EnfForgedAccepted},
		{"a forged receipt discarded for another reason", func(h *eh) {
			h.fence("svc", history.RoleForgedSubject, "s1", 5, 5.1, "discard", "denied_now", 70, 69)
		}, EnfForgedAccepted},
		{"a forged receipt whose fence failed closed", func(h *eh) {
			h.fence("svc", history.RoleForgedUnknownKey, "s1", 5, 5.1, "", "", 0, 69)
		}, ""},
		{"a forged receipt processed without a fence", func(h *eh) {
			h.report("svc", history.OK, map[int]string{h.process("svc", history.RoleForgedKey, "s1", 5): "VIOLATION_KIND_INVALID_RECEIPT"})
		}, EnfForgedAccepted},
		{"a false event allowed at the gate", func(h *eh) { h.gate(history.RoleFalsePurpose, "s1", history.OK, true) }, EnfFalseAccepted},
		{"a false event refused at the gate", func(h *eh) { h.gate(history.RoleFalseSubject, "", history.Fail, false) }, ""},
		{"a false event processed", func(h *eh) {
			h.report("svc", history.OK, map[int]string{h.fence("svc", history.RoleFalsePurpose, "s1", 5, 5.1, "process", "", 70, 0): ""})
		}, EnfFalseAccepted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := base()
			c.add(h)
			wantOnly(t, check(h), c.want)
		})
	}
}

func TestEnforceViolationsStored(t *testing.T) {
	h := base() // the planted violation is op 4, violation 1004
	h.list("sloppy", history.OK, 1004, 77)
	res := check(h)
	wantOnly(t, res, "")
	if res.Violations != 1 || res.Stored != 1 {
		t.Fatalf("%+v", res)
	}
	h = base()
	h.list("sloppy", history.OK, 77)
	wantOnly(t, check(h), EnfViolationLost)
	h = base()
	h.list("sloppy", history.Fail)
	if res := check(h); !res.Valid || res.Stored != 0 || res.Violations != 1 {
		t.Fatalf("a failed listing must leave the check to the harness: %+v", res)
	}
}

func TestEnforceVacuous(t *testing.T) {
	res := check(&eh{})
	if res.Valid || res.Counts[EnfVacuous] != 4 {
		t.Fatalf("an empty history passed: %+v", res)
	}
	if res := check(&eh{}, func(o *EnforceOptions) { o.Interrupted = true }); !res.Valid {
		t.Fatalf("%+v", res)
	}
}
