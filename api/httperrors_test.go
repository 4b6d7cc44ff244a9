package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

// TestHTTPErrorBodies: every error a curl user can provoke has a Connect
// JSON body that names the problem and the fix, and none reaches the store.
func TestHTTPErrorBodies(t *testing.T) {
	store := memStore()
	s := serve(t, store, api.Options{})
	hc := http1Client(t)
	post := func(path, contentType, body string) rawResult {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return rawDo(t, hc, req)
	}
	for _, tc := range []struct {
		name, path, contentType, body string
		status                        int
		code                          string
		mention                       []string
	}{
		{"wrong enum value", "/optout.v1.OptOutService/Set", "application/json",
			`{"subjectId":"u1","purpose":"email_marketing","state":"OPTED_OUT"}`,
			http.StatusBadRequest, "invalid_argument", []string{`state: "OPTED_OUT" is not a valid State; valid values: STATE_OPTED_OUT, STATE_OPTED_IN`}},
		{"wrong enum value in a nested message", "/optout.v1.CatalogService/DefinePurpose", "application/json",
			`{"purpose":{"name":"x","defaultDecision":"DENY"}}`,
			http.StatusBadRequest, "invalid_argument", []string{`defaultDecision: "DENY" is not a valid Default; valid values: DEFAULT_ALLOW, DEFAULT_DENY`}},
		{"no Content-Type", "/optout.v1.OptOutService/Check", "", `{"subjectId":"u1","purpose":"email_marketing"}`,
			http.StatusUnsupportedMediaType, "invalid_argument", []string{"missing Content-Type", "Content-Type: application/json"}},
		{"form Content-Type (curl -d without -H)", "/optout.v1.OptOutService/Check", "application/x-www-form-urlencoded", `{}`,
			http.StatusUnsupportedMediaType, "invalid_argument", []string{`Content-Type "application/x-www-form-urlencoded" is not supported`}},
		{"unknown method", "/optout.v1.OptOutService/Sett", "application/json", `{}`,
			http.StatusNotFound, "unimplemented", []string{`optout.v1.OptOutService has no method "Sett"`, "Set, SetBatch, Check, CheckBatch, Get, Watch, EraseSubject"}},
		{"unknown service", "/optout.v2.OptOutService/Check", "application/json", `{}`,
			http.StatusNotFound, "unimplemented", []string{"no method at /optout.v2.OptOutService/Check", "optout.v1.OptOutService, optout.v1.CatalogService"}},
		{"oversized body", "/optout.v1.OptOutService/Check", "application/json",
			`{"subjectId":"` + strings.Repeat("x", api.MaxRequestBytes) + `","purpose":"p"}`,
			http.StatusRequestEntityTooLarge, "invalid_argument", []string{"over the limit of 1048576 bytes", "retrying will not help"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(tc.path, tc.contentType, tc.body)
			msg, _ := r.body["message"].(string)
			if r.status != tc.status || r.body["code"] != tc.code {
				t.Errorf("%d %v, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			for _, m := range tc.mention {
				if !strings.Contains(msg, m) {
					t.Errorf("message %q lacks %q", msg, m)
				}
			}
		})
	}
	if n := store.calls(); n != 0 {
		t.Errorf("refused requests made %d store calls", n)
	}
}

// TestUnknownMethodOverGRPC: a gRPC client calling a method that does not
// exist gets a gRPC unimplemented status naming the methods, not a bare
// HTTP 404.
func TestUnknownMethodOverGRPC(t *testing.T) {
	s := serve(t, memStore(), api.Options{})
	c := connect.NewClient[optoutv1.CheckRequest, optoutv1.CheckResponse](h2cClient(t), s.URL+"/optout.v1.OptOutService/Chek", connect.WithGRPC())
	_, err := c.CallUnary(ctx(t), connect.NewRequest(&optoutv1.CheckRequest{SubjectId: "u1", Purpose: "email_marketing"}))
	if connect.CodeOf(err) != connect.CodeUnimplemented || !strings.Contains(err.Error(), `has no method "Chek"`) {
		t.Fatalf("unknown method over gRPC: %v", err)
	}
	// The known methods still answer.
	_, err = optoutv1connect.NewOptOutServiceClient(h2cClient(t), s.URL, connect.WithGRPC()).
		Check(ctx(t), connect.NewRequest(&optoutv1.CheckRequest{SubjectId: "u1", Purpose: "email_marketing"}))
	if err != nil {
		t.Fatalf("Check over gRPC: %v", err)
	}
}

// TestJSONResponsesAreCompact: responses carry no whitespace at all, so
// they are the same bytes whichever build serves them (protojson adds a
// space after some commas, differently in each build).
func TestJSONResponsesAreCompact(t *testing.T) {
	s := serve(t, memStore(), api.Options{})
	req, err := http.NewRequest(http.MethodPost, s.URL+"/optout.v1.OptOutService/Set",
		strings.NewReader(`{"subjectId":"u1","purpose":"email_marketing","state":"STATE_OPTED_OUT","source":"a b","reason":"c, d"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http1Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if compact.String() != string(b) || !strings.Contains(string(b), `"reason":"c, d"`) {
		t.Errorf("response is not compact JSON:\n got %s\nwant %s", b, compact.String())
	}
}
