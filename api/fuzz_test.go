package api_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The fuzz targets push arbitrary field values and arbitrary trailing
// protobuf bytes through the real handler (in-process, so a panic fails),
// optionally re-encoded as JSON, and compare the handler's verdict with an
// independent statement of the limits:
//
//   - the store is called exactly when the request is valid;
//   - what the store receives satisfies every limit;
//   - a refusal is invalid_argument and calls nothing.

// validKey restates the key limits without using optoutd's validators.
func validKey(subject, purpose string) bool {
	if len(subject) < 1 || len(subject) > 256 || !utf8.ValidString(subject) {
		return false
	}
	if len(purpose) < 1 || len(purpose) > 64 {
		return false
	}
	for i := 0; i < len(purpose); i++ {
		c := purpose[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func validText(s string) bool { return len(s) <= 256 && utf8.ValidString(s) }

// encode returns the body to send and its content type: binary as given,
// or, when asJSON and the bytes decode, the same message as JSON (which
// drops unknown fields).
func encode(t *testing.T, body []byte, m proto.Message, asJSON bool) (out []byte, contentType string, isJSON bool) {
	if !asJSON || proto.Unmarshal(body, m) != nil {
		return body, "application/proto", false
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatalf("protojson: %v", err)
	}
	return b, "application/json", true
}

// parse reports whether body decodes into m with no unknown top-level
// fields.
func parse(body []byte, isJSON bool, m proto.Message) bool {
	if isJSON {
		return protojson.Unmarshal(body, m) == nil
	}
	if err := proto.Unmarshal(body, m); err != nil {
		return false
	}
	return len(m.ProtoReflect().GetUnknown()) == 0
}

// namesField fails unless a refusal of a well-formed request starts with
// one of the field names.
func namesField(t *testing.T, msg string, fields ...string) {
	t.Helper()
	for _, f := range fields {
		if strings.HasPrefix(msg, f) {
			return
		}
	}
	t.Fatalf("refusal %q names none of %v", msg, fields)
}

// verdict checks the common half of the property and returns whether the
// handler accepted the request.
func verdict(t *testing.T, status int, code, msg string, calls int64, want bool) bool {
	t.Helper()
	ok := status == 200
	if ok != want {
		t.Fatalf("handler accepted=%v (status %d, %s %q), independent check says valid=%v", ok, status, code, msg, want)
	}
	if !ok {
		if code != "invalid_argument" {
			t.Fatalf("refused with %s %q, want invalid_argument", code, msg)
		}
		if calls != 0 {
			t.Fatalf("refused request made %d store calls", calls)
		}
	}
	return ok
}

func FuzzSetRequest(f *testing.F) {
	k128, k129 := strings.Repeat("k", 128), strings.Repeat("k", 129)
	f.Add("u1", "email_marketing", uint64(1), "web-form", "unsubscribe link", false, uint64(0), "", []byte(nil), false)
	f.Add("u1", "email_marketing", uint64(2), "", "", true, uint64(0), "req-1", []byte(nil), true)
	f.Add(s256, p64, uint64(1), s256, s256, true, uint64(17), k128, []byte(nil), false)
	f.Add(s257, "p", uint64(1), "", "", false, uint64(0), k129, []byte(nil), true)
	f.Add("u1", "p", uint64(1), "", "", false, uint64(0), k129, []byte(nil), false)
	f.Add("u1", p65, uint64(3), "", "", false, uint64(0), "", []byte{0x98, 0x06, 0x01}, false)
	f.Add("u\xff", "Email", uint64(0), "\xc3(", s257, false, uint64(0), "\xff", appendVarint(nil, 3, 1<<40), false)
	f.Add("", "", uint64(1), "", "", false, uint64(0), "", appendString(nil, 1, "u2"), true)
	f.Fuzz(func(t *testing.T, subject, purpose string, state uint64, source, reason string, hasExpected bool, expected uint64, idem string, extra []byte, asJSON bool) {
		b := appendString(nil, 1, subject)
		b = appendString(b, 2, purpose)
		b = appendVarint(b, 3, state)
		b = appendString(b, 4, source)
		b = appendString(b, 5, reason)
		if hasExpected {
			b = appendVarint(b, 6, expected)
		}
		b = appendString(b, 7, idem)
		b = append(b, extra...)
		body, ct, isJSON := encode(t, b, &optoutv1.SetRequest{}, asJSON)

		var m optoutv1.SetRequest
		parsed := parse(body, isJSON, &m)
		want := parsed && validKey(m.SubjectId, m.Purpose) &&
			(m.State == optoutv1.State_STATE_OPTED_OUT || m.State == optoutv1.State_STATE_OPTED_IN) &&
			validText(m.Source) && validText(m.Reason) && len(m.IdempotencyKey) <= 128 && utf8.ValidString(m.IdempotencyKey)

		var got optoutd.SetRequest
		store := &fakeStore{SetFn: func(_ context.Context, r optoutd.SetRequest) (optoutd.SetResult, error) {
			got = r
			return optoutd.SetResult{Record: optoutd.Record{Key: r.Key, State: r.State, Version: 7, Source: r.Source, Reason: r.Reason}}, nil
		}}
		status, code, msg, _ := connectRaw(t, api.NewHandler(store, api.Options{}), optoutv1connect.OptOutServiceSetProcedure, ct, body)
		if !verdict(t, status, code, msg, store.calls(), want) {
			if parsed {
				namesField(t, msg, "subject_id:", "purpose:", "state:", "source:", "reason:", "idempotency_key:")
			}
			return
		}
		if store.setCalls.Load() != 1 {
			t.Fatalf("accepted with %d Set calls", store.setCalls.Load())
		}
		if !validKey(got.SubjectID, got.Purpose) || !validText(got.Source) || !validText(got.Reason) ||
			(got.State != optoutd.StateOptedOut && got.State != optoutd.StateOptedIn) || optoutd.ValidateSet(got) != nil {
			t.Fatalf("store got an invalid request %+v", got)
		}
		if got.SubjectID != m.SubjectId || got.Purpose != m.Purpose || got.Source != m.Source || got.Reason != m.Reason || got.IdempotencyKey != m.IdempotencyKey {
			t.Fatalf("store got %+v, client sent %v", got, &m)
		}
		if (got.ExpectedVersion == nil) != (m.ExpectedVersion == nil) || got.ExpectedVersion != nil && *got.ExpectedVersion != *m.ExpectedVersion {
			t.Fatalf("expected version: store got %v, client sent %v", got.ExpectedVersion, m.ExpectedVersion)
		}
	})
}

// keyRecorder is a View that records which keys were checked or read. Every
// purpose name is defined in it, so that only validation can refuse.
type keyRecorder struct {
	memView
	mu   sync.Mutex
	keys []optoutd.Key
}

func (v *keyRecorder) record(k optoutd.Key) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.keys = append(v.keys, k)
}

func (v *keyRecorder) Get(k optoutd.Key) (optoutd.Record, bool, error) {
	v.record(k)
	return optoutd.Record{Key: k}, false, nil
}

func (v *keyRecorder) Check(k optoutd.Key) (optoutd.CheckResult, error) {
	v.record(k)
	return optoutd.CheckResult{Decision: optoutd.DecisionAllow, Basis: optoutd.BasisPurposeDefault, DecidedBy: k.Purpose}, nil
}

func (v *keyRecorder) Purpose(name string) (optoutd.Purpose, error) {
	return optoutd.Purpose{Name: name, Default: optoutd.DefaultAllow}, nil
}

func readStore(v *keyRecorder) *fakeStore {
	return &fakeStore{ReadFn: func(_ context.Context, fn func(optoutd.View) error) (uint64, error) { return 5, fn(v) }}
}

func FuzzCheckRequest(f *testing.F) {
	f.Add("u1", "email_marketing", []byte(nil), false)
	f.Add(s256, p64, []byte(nil), true)
	f.Add(s257, p65, []byte(nil), false)
	f.Add("u1", "e-mail.v2_x", []byte{0x98, 0x06, 0x01}, false)
	f.Add("", "UPPER", appendString(nil, 2, "ok"), true)
	f.Add("\xff", "p", []byte{0x0a}, false)
	f.Fuzz(func(t *testing.T, subject, purpose string, extra []byte, asJSON bool) {
		b := append(appendString(appendString(nil, 1, subject), 2, purpose), extra...)
		for _, procedure := range []string{optoutv1connect.OptOutServiceCheckProcedure, optoutv1connect.OptOutServiceGetProcedure} {
			body, ct, isJSON := encode(t, b, &optoutv1.CheckRequest{}, asJSON)
			var m optoutv1.CheckRequest
			parsed := parse(body, isJSON, &m)
			want := parsed && validKey(m.SubjectId, m.Purpose)

			v := &keyRecorder{}
			store := readStore(v)
			status, code, msg, _ := connectRaw(t, api.NewHandler(store, api.Options{}), procedure, ct, body)
			if procedure == optoutv1connect.OptOutServiceGetProcedure && code == "not_found" {
				status = 200 // an answer: the fake store holds nothing
			}
			if !verdict(t, status, code, msg, store.calls(), want) {
				if parsed {
					namesField(t, msg, "subject_id:", "purpose:")
				}
				continue
			}
			if len(v.keys) != 1 || !validKey(v.keys[0].SubjectID, v.keys[0].Purpose) || v.keys[0] != (optoutd.Key{SubjectID: m.SubjectId, Purpose: m.Purpose}) {
				t.Fatalf("%s read keys %v for request %v", procedure, v.keys, &m)
			}
		}
	})
}

func FuzzCheckBatchRequest(f *testing.F) {
	f.Add(uint16(1), "u", "email_marketing", uint16(0), "u1", "p", []byte(nil), false)
	f.Add(uint16(1000), "u", "email_marketing", uint16(999), s256, p64, []byte(nil), false)
	f.Add(uint16(1001), "u", "email_marketing", uint16(0), "u1", "p", []byte(nil), false)
	f.Add(uint16(0), "u", "p", uint16(0), "u1", "p", []byte(nil), true)
	f.Add(uint16(5), "u", "p", uint16(3), "u1", "Email", []byte(nil), true)
	f.Add(uint16(3), "u", "p", uint16(1), "", "p", []byte{0x98, 0x06, 0x01}, false)
	f.Add(uint16(2), "u", "p", uint16(1), "\xff", "p", []byte{0x12, 0x00}, false)
	f.Fuzz(func(t *testing.T, n uint16, subject, purpose string, badAt uint16, badSubject, badPurpose string, extra []byte, asJSON bool) {
		count := int(n % 1003)
		var b []byte
		for i := range count {
			s, p := subject+u64(uint64(i)), purpose
			if i == int(badAt)%count {
				s, p = badSubject, badPurpose
			}
			entry := appendString(appendString(nil, 1, s), 2, p)
			b = protowire.AppendBytes(protowire.AppendTag(b, 1, protowire.BytesType), entry)
		}
		b = append(b, extra...)
		body, ct, isJSON := encode(t, b, &optoutv1.CheckBatchRequest{}, asJSON)

		var m optoutv1.CheckBatchRequest
		parsed := parse(body, isJSON, &m)
		want := parsed && len(m.Checks) >= 1 && len(m.Checks) <= 1000
		for _, c := range m.Checks {
			want = want && len(c.ProtoReflect().GetUnknown()) == 0 && validKey(c.SubjectId, c.Purpose)
		}

		v := &keyRecorder{}
		store := readStore(v)
		status, code, msg, resp := connectRaw(t, api.NewHandler(store, api.Options{}), optoutv1connect.OptOutServiceCheckBatchProcedure, ct, body)
		if !verdict(t, status, code, msg, store.calls(), want) {
			if parsed {
				namesField(t, msg, "checks", "request:")
			}
			return
		}
		if len(v.keys) != len(m.Checks) {
			t.Fatalf("read %d keys for %d checks", len(v.keys), len(m.Checks))
		}
		for i, k := range v.keys {
			if !validKey(k.SubjectID, k.Purpose) || k.SubjectID != m.Checks[i].SubjectId || k.Purpose != m.Checks[i].Purpose {
				t.Fatalf("key %d: read %v for check %v", i, k, m.Checks[i])
			}
		}
		var out optoutv1.CheckBatchResponse
		unmarshal := proto.Unmarshal
		if isJSON {
			unmarshal = protojson.Unmarshal
		}
		if err := unmarshal(resp, &out); err != nil || len(out.Results) != len(m.Checks) {
			t.Fatalf("response %v (%v) for %d checks", &out, err, len(m.Checks))
		}
	})
}
