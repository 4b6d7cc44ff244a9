package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

var (
	s256 = strings.Repeat("s", 256)
	s257 = strings.Repeat("s", 257)
	p64  = strings.Repeat("p", 64)
	p65  = strings.Repeat("p", 65)
)

func setReq(mod func(*optoutv1.SetRequest)) *optoutv1.SetRequest {
	r := &optoutv1.SetRequest{SubjectId: "u1", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT, Source: "web-form", Reason: "unsubscribe link"}
	if mod != nil {
		mod(r)
	}
	return r
}

func checks(n int) []*optoutv1.CheckRequest {
	out := make([]*optoutv1.CheckRequest, n)
	for i := range out {
		out[i] = &optoutv1.CheckRequest{SubjectId: fmt.Sprintf("u%d", i), Purpose: "email_marketing"}
	}
	return out
}

// TestValidation sends one bad field at a time: each is invalid_argument
// naming the field, and the store is never called. The boundary values next
// to each limit are accepted.
func TestValidation(t *testing.T) {
	type call func(c clients) error
	set := func(mod func(*optoutv1.SetRequest)) call {
		return func(c clients) error {
			_, err := c.optout.Set(ctx(t), connect.NewRequest(setReq(mod)))
			return err
		}
	}
	check := func(subject, purpose string) call {
		return func(c clients) error {
			_, err := c.optout.Check(ctx(t), connect.NewRequest(&optoutv1.CheckRequest{SubjectId: subject, Purpose: purpose}))
			return err
		}
	}
	get := func(subject, purpose string) call {
		return func(c clients) error {
			_, err := c.optout.Get(ctx(t), connect.NewRequest(&optoutv1.GetRequest{SubjectId: subject, Purpose: purpose}))
			return err
		}
	}
	batch := func(cs []*optoutv1.CheckRequest) call {
		return func(c clients) error {
			_, err := c.optout.CheckBatch(ctx(t), connect.NewRequest(&optoutv1.CheckBatchRequest{Checks: cs}))
			return err
		}
	}
	badEntry := checks(5)
	badEntry[3].Purpose = "Email"
	emptyEntry := checks(2)
	emptyEntry[1].SubjectId = ""

	for _, tc := range []struct {
		name  string
		call  call
		field string // "" means the request is valid
		write bool
	}{
		{"set: empty subject", set(func(r *optoutv1.SetRequest) { r.SubjectId = "" }), "subject_id", true},
		{"set: subject over 256 bytes", set(func(r *optoutv1.SetRequest) { r.SubjectId = s257 }), "subject_id", true},
		{"set: 4-byte runes over 256 bytes", set(func(r *optoutv1.SetRequest) { r.SubjectId = strings.Repeat("😀", 65) }), "subject_id", true},
		{"set: empty purpose", set(func(r *optoutv1.SetRequest) { r.Purpose = "" }), "purpose", true},
		{"set: upper-case purpose", set(func(r *optoutv1.SetRequest) { r.Purpose = "Email" }), "purpose", true},
		{"set: purpose with a space", set(func(r *optoutv1.SetRequest) { r.Purpose = "email marketing" }), "purpose", true},
		{"set: purpose with a slash", set(func(r *optoutv1.SetRequest) { r.Purpose = "a/b" }), "purpose", true},
		{"set: purpose with a newline", set(func(r *optoutv1.SetRequest) { r.Purpose = "email\n" }), "purpose", true},
		{"set: purpose over 64 bytes", set(func(r *optoutv1.SetRequest) { r.Purpose = p65 }), "purpose", true},
		{"set: state unset", set(func(r *optoutv1.SetRequest) { r.State = optoutv1.State_STATE_UNSPECIFIED }), "state", true},
		{"set: state out of range", set(func(r *optoutv1.SetRequest) { r.State = 99 }), "state", true},
		{"set: source over 256 bytes", set(func(r *optoutv1.SetRequest) { r.Source = s257 }), "source", true},
		{"set: reason over 256 bytes", set(func(r *optoutv1.SetRequest) { r.Reason = s257 }), "reason", true},
		{"set: idempotency key over 128 bytes", set(func(r *optoutv1.SetRequest) { r.IdempotencyKey = strings.Repeat("k", 129) }), "idempotency_key", true},
		{"check: empty subject", check("", "p"), "subject_id", false},
		{"check: subject over 256 bytes", check(s257, "p"), "subject_id", false},
		{"check: bad purpose", check("u1", "E-mail"), "purpose", false},
		{"check: purpose over 64 bytes", check("u1", p65), "purpose", false},
		{"get: empty subject", get("", "p"), "subject_id", false},
		{"get: bad purpose", get("u1", ""), "purpose", false},
		{"batch: empty", batch(nil), "checks", false},
		{"batch: 1001 checks", batch(checks(1001)), "checks", false},
		{"batch: bad purpose in entry 3", batch(badEntry), "checks[3].purpose", false},
		{"batch: empty subject in entry 1", batch(emptyEntry), "checks[1].subject_id", false},

		{"set: limits exactly", set(func(r *optoutv1.SetRequest) {
			r.SubjectId, r.Purpose, r.Source, r.Reason = s256, p64, s256, s256
		}), "", true},
		{"set: multi-byte subject at 256 bytes", set(func(r *optoutv1.SetRequest) { r.SubjectId = strings.Repeat("😀", 64) }), "", true},
		{"set: idempotency key of 128 bytes", set(func(r *optoutv1.SetRequest) { r.IdempotencyKey = strings.Repeat("k", 128) }), "", true},
		{"set: every purpose character", set(func(r *optoutv1.SetRequest) { r.Purpose = "a-z.0_9" }), "", true},
		{"set: opted in, no source or reason", set(func(r *optoutv1.SetRequest) { r.State, r.Source, r.Reason = optoutv1.State_STATE_OPTED_IN, "", "" }), "", true},
		{"check: limits exactly", check(s256, p64), "", false},
		{"get: limits exactly", get(s256, p64), "", false}, // not_found is an answer
		{"batch: 1000 checks", batch(checks(1000)), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := memStore()
			s := serve(t, store, api.Options{})
			err := tc.call(protocols()[0].clients(t, s))
			if tc.field == "" {
				if err != nil && connect.CodeOf(err) != connect.CodeNotFound {
					t.Fatalf("valid request refused: %v", err)
				}
				if store.calls() != 1 {
					t.Errorf("valid request made %d store calls, want 1", store.calls())
				}
				return
			}
			ce := wireError(t, err, connect.CodeInvalidArgument)
			if !strings.HasPrefix(ce.Message(), tc.field+":") {
				t.Errorf("message %q does not start with the field %q", ce.Message(), tc.field+":")
			}
			_, wo := details(t, ce)
			if tc.write && wo.GetOutcome() != optoutv1.Outcome_OUTCOME_NOT_APPLIED {
				t.Errorf("invalid write: WriteOutcome %v, want NOT_APPLIED", wo)
			}
			if !tc.write && wo != nil {
				t.Errorf("invalid read carries a WriteOutcome %v", wo)
			}
			if n := store.calls(); n != 0 {
				t.Errorf("invalid request made %d store calls", n)
			}
		})
	}
}

// connectProto posts a binary body with the Connect protocol, the way a
// client built against another schema (or a broken one) would, and
// returns the HTTP status and, for errors, the code and message.
func connectProto(t testing.TB, h http.Handler, procedure string, body []byte) (status int, code, message string, resp []byte) {
	t.Helper()
	return connectRaw(t, h, procedure, "application/proto", body)
}

// connectRaw is connectProto for any content type; it calls the handler
// in-process, so a panic fails the test.
func connectRaw(t testing.TB, h http.Handler, procedure, contentType string, body []byte) (status int, code, message string, resp []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://optoutd"+procedure, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status == http.StatusOK {
		return rec.status, "", "", rec.body.Bytes()
	}
	var e struct{ Code, Message string }
	if err := json.Unmarshal(rec.body.Bytes(), &e); err != nil {
		t.Fatalf("%s: HTTP %d with body %q: %v", procedure, rec.status, rec.body.Bytes(), err)
	}
	return rec.status, e.Code, e.Message, nil
}

// recorder is a minimal http.ResponseWriter (httptest.ResponseRecorder
// would do, but this one is cheap enough for fuzzing).
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) { r.WriteHeader(http.StatusOK); return r.body.Write(b) }

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestValidationOfRawProtobuf covers what a generated client cannot send:
// invalid UTF-8 and fields this server does not know.
func TestValidationOfRawProtobuf(t *testing.T) {
	valid := mustMarshal(t, setReq(nil))
	unknown := appendVarint(nil, 99, 1)
	for _, tc := range []struct {
		name, procedure string
		body            []byte
		mention         string
	}{
		// The protobuf decoder refuses invalid UTF-8 in a proto3 string
		// before the handler sees it; its message says UTF-8 but not
		// which field.
		{"set: subject not UTF-8", optoutv1connect.OptOutServiceSetProcedure, appendString(valid, 1, "u\xff"), "UTF-8"},
		{"set: source not UTF-8", optoutv1connect.OptOutServiceSetProcedure, appendString(valid, 4, "\xc3("), "UTF-8"},
		{"set: reason not UTF-8", optoutv1connect.OptOutServiceSetProcedure, appendString(valid, 5, "\xed\xa0\x80"), "UTF-8"},
		{"set: unknown field", optoutv1connect.OptOutServiceSetProcedure, append(valid, unknown...), "request"},
		{"set: truncated", optoutv1connect.OptOutServiceSetProcedure, valid[:len(valid)-1], ""},
		{"check: purpose not UTF-8", optoutv1connect.OptOutServiceCheckProcedure, appendString(appendString(nil, 1, "u1"), 2, "\xff"), "UTF-8"},
		{"check: unknown field", optoutv1connect.OptOutServiceCheckProcedure, append(appendString(appendString(nil, 1, "u1"), 2, "p"), unknown...), "request"},
		{"get: unknown field", optoutv1connect.OptOutServiceGetProcedure, append(appendString(appendString(nil, 1, "u1"), 2, "p"), unknown...), "request"},
		{"batch: unknown field in an entry", optoutv1connect.OptOutServiceCheckBatchProcedure,
			protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), append(appendString(appendString(nil, 1, "u1"), 2, "p"), unknown...)), "request"},
		{"batch: unknown top-level field", optoutv1connect.OptOutServiceCheckBatchProcedure,
			append(mustMarshal(t, &optoutv1.CheckBatchRequest{Checks: checks(1)}), unknown...), "request"},
		{"status: unknown field", optoutv1connect.ClusterServiceStatusProcedure, unknown, "request"},
		{"digest: unknown field", optoutv1connect.ClusterServiceStateDigestProcedure, unknown, "request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := memStore()
			_, code, msg, _ := connectProto(t, api.NewHandler(store, api.Options{}), tc.procedure, tc.body)
			if code != "invalid_argument" || !strings.Contains(msg, tc.mention) {
				t.Errorf("got %q %q, want invalid_argument mentioning %q", code, msg, tc.mention)
			}
			if n := store.calls(); n != 0 {
				t.Errorf("made %d store calls", n)
			}
		})
	}
}

// TestOversizedRequest: a message over 1 MiB is refused before decoding,
// in every protocol, and the store is never called.
func TestOversizedRequest(t *testing.T) {
	big := strings.Repeat("x", api.MaxRequestBytes)
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			store := memStore()
			s := serve(t, store, api.Options{})
			_, err := p.clients(t, s).optout.Set(ctx(t), connect.NewRequest(setReq(func(r *optoutv1.SetRequest) { r.Reason = big })))
			if c := connect.CodeOf(err); c != connect.CodeResourceExhausted && c != connect.CodeInvalidArgument {
				t.Errorf("oversized Set: %v, want resource_exhausted", err)
			}
			if store.calls() != 0 {
				t.Errorf("oversized request reached the store")
			}
		})
	}
	t.Run("curl", func(t *testing.T) {
		store := memStore()
		s := serve(t, store, api.Options{})
		r := curlPost(t, http1Client(t), s.URL, "/optout.v1.OptOutService/Check", `{"subjectId":"`+big+`","purpose":"p"}`)
		// Not resource_exhausted (429), which invites a retry that cannot
		// succeed: invalid_argument, naming the limit.
		msg, _ := r.body["message"].(string)
		if r.status != http.StatusRequestEntityTooLarge || r.body["code"] != "invalid_argument" || !strings.Contains(msg, "over the limit of 1048576 bytes") {
			t.Errorf("oversized curl: %d %v", r.status, r.body)
		}
		if store.calls() != 0 {
			t.Errorf("oversized request reached the store")
		}
	})
	t.Run("just under the limit is decoded", func(t *testing.T) {
		store := memStore()
		body := mustMarshal(t, setReq(nil))
		body = appendString(body, 5, strings.Repeat("r", api.MaxRequestBytes-len(body)-8))
		if len(body) > api.MaxRequestBytes {
			t.Fatalf("body %d bytes", len(body))
		}
		_, code, msg, _ := connectProto(t, api.NewHandler(store, api.Options{}), optoutv1connect.OptOutServiceSetProcedure, body)
		// The reason is over its own 256-byte limit, so validation, not
		// the size cap, must be what refuses it.
		if code != "invalid_argument" || !strings.HasPrefix(msg, "reason:") {
			t.Errorf("got %q %q, want invalid_argument on reason", code, msg)
		}
	})
}
