package api_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// These tests send the requests a curl user would, byte for byte, and pin
// the JSON that comes back: field names, uint64s as strings, enum names,
// and zero values present.

type obj = map[string]any

type rawResult struct {
	status int
	proto  int
	body   obj
}

func rawDo(t *testing.T, hc *http.Client, req *http.Request) rawResult {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, body %q", req.Method, req.URL.Path, ct, b)
	}
	var m obj
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", req.Method, req.URL.Path, b, err)
	}
	return rawResult{status: resp.StatusCode, proto: resp.ProtoMajor, body: m}
}

// curlPost is `curl -H 'Content-Type: application/json' -d BODY URL/PATH`.
func curlPost(t *testing.T, hc *http.Client, base, path, body string) rawResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return rawDo(t, hc, req)
}

// wantJSON fails unless every field of want, at any depth, is in got with
// want's value. got may carry fields added to the schema since: additions
// are compatible, renames and removals are not.
func wantJSON(t *testing.T, what string, got, want obj) {
	t.Helper()
	if !contains(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

func contains(got, want any) bool {
	switch w := want.(type) {
	case obj:
		g, ok := got.(obj)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !contains(gv, wv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !contains(g[i], w[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(got, want)
	}
}

func TestCurlExamples(t *testing.T) {
	for _, tc := range []struct {
		name  string
		h2c   bool
		major int
	}{{"http1", false, 1}, {"h2c", true, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			s := serve(t, memStore(), api.Options{})
			hc := http1Client(t)
			if tc.h2c {
				hc = h2cClient(t)
			}
			post := func(path, body string) obj {
				t.Helper()
				r := curlPost(t, hc, s.URL, path, body)
				if r.status != http.StatusOK || r.proto != tc.major {
					t.Fatalf("POST %s %s: HTTP/%d %d %v", path, body, r.proto, r.status, r.body)
				}
				return r.body
			}
			curlExamples(t, s, hc, post)
		})
	}
}

func curlExamples(t *testing.T, s *server, hc *http.Client, post func(path, body string) obj) {
	const v1, next = "41", "42"
	wantJSON(t, "Check with no record", post("/optout.v1.OptOutService/Check", `{"subjectId":"u1","purpose":"email_marketing"}`),
		obj{"decision": "DECISION_ALLOW", "state": "STATE_UNSPECIFIED", "version": "0", "readIndex": "40",
			"basis": "BASIS_PURPOSE_DEFAULT", "decidedByPurpose": "email_marketing", "catalogVersion": "7"})

	rec := obj{"subjectId": "u1", "purpose": "email_marketing", "state": "STATE_OPTED_OUT", "version": v1,
		"updatedAt": "2025-03-14T15:09:26Z", "source": "web-form", "reason": "unsubscribe link"}
	wantJSON(t, "Set", post("/optout.v1.OptOutService/Set",
		`{"subjectId":"u1","purpose":"email_marketing","state":"STATE_OPTED_OUT","source":"web-form","reason":"unsubscribe link"}`),
		obj{"version": v1, "record": rec, "replayed": false, "catalogVersion": "7"})

	wantJSON(t, "Check", post("/optout.v1.OptOutService/Check", `{"subjectId":"u1","purpose":"email_marketing"}`),
		obj{"decision": "DECISION_DENY", "state": "STATE_OPTED_OUT", "version": v1, "readIndex": v1,
			"basis": "BASIS_PURPOSE_RECORD", "decidedByPurpose": "email_marketing", "catalogVersion": "7"})

	// snake_case field names are accepted too (protojson), and empty
	// source/reason come back as "".
	wantJSON(t, "Set with snake_case and no source", post("/optout.v1.OptOutService/Set",
		`{"subject_id":"u2","purpose":"email_marketing","state":"STATE_OPTED_IN","expected_version":"0"}`),
		obj{"version": next, "record": obj{"subjectId": "u2", "purpose": "email_marketing", "state": "STATE_OPTED_IN",
			"version": next, "updatedAt": "2025-03-14T15:09:26Z", "source": "", "reason": ""}})

	wantJSON(t, "CheckBatch", post("/optout.v1.OptOutService/CheckBatch",
		`{"checks":[{"subjectId":"u1","purpose":"email_marketing"},{"subjectId":"nobody","purpose":"email_marketing"},{"subjectId":"u2","purpose":"email_marketing"}]}`),
		obj{"readIndex": next, "results": []any{
			obj{"decision": "DECISION_DENY", "state": "STATE_OPTED_OUT", "version": v1, "readIndex": next},
			obj{"decision": "DECISION_ALLOW", "state": "STATE_UNSPECIFIED", "version": "0", "readIndex": next},
			obj{"decision": "DECISION_ALLOW", "state": "STATE_OPTED_IN", "version": next, "readIndex": next},
		}})

	wantJSON(t, "Get", post("/optout.v1.OptOutService/Get", `{"subjectId":"u1","purpose":"email_marketing"}`),
		obj{"record": rec, "readIndex": next})

	wantJSON(t, "Status", post("/optout.v1.ClusterService/Status", `{}`), obj{
		"nodeId": "n1", "leaderId": "n2", "term": "3", "commitIndex": next, "appliedIndex": next, "raftState": "Follower",
		"lastLogIndex": "0", "firstLogIndex": "0", "lastSnapshotIndex": "0",
		"nodes": []any{
			obj{"id": "n1", "raftAddress": "127.0.0.1:7101", "apiAddress": "127.0.0.1:7001", "voter": true, "leader": false},
			obj{"id": "n2", "raftAddress": "127.0.0.1:7102", "apiAddress": "127.0.0.1:7002", "voter": true, "leader": true},
			obj{"id": "n3", "raftAddress": "127.0.0.1:7103", "apiAddress": "", "voter": false, "leader": false},
		}})

	// Errors: the Connect error JSON with code names and typed details.
	r := curlPost(t, hc, s.URL, "/optout.v1.OptOutService/Set",
		`{"subjectId":"u1","purpose":"email_marketing","state":"STATE_OPTED_IN","expectedVersion":"7"}`)
	if r.status == http.StatusOK || r.body["code"] != "failed_precondition" ||
		!strings.Contains(r.body["message"].(string), "current version "+v1) {
		t.Errorf("CAS conflict: %d %v", r.status, r.body)
	}
	vm := &optoutv1.VersionMismatch{}
	wo := &optoutv1.WriteOutcome{}
	jsonDetail(t, r.body, "optout.v1.VersionMismatch", vm)
	jsonDetail(t, r.body, "optout.v1.WriteOutcome", wo)
	if vm.CurrentVersion != 41 || wo.Outcome != optoutv1.Outcome_OUTCOME_NOT_APPLIED {
		t.Errorf("CAS conflict details: %v %v", vm, wo)
	}

	r = curlPost(t, hc, s.URL, "/optout.v1.OptOutService/Get", `{"subjectId":"nobody","purpose":"email_marketing"}`)
	if r.status != http.StatusNotFound || r.body["code"] != "not_found" || r.body["details"] != nil {
		t.Errorf("Get of a missing record: %d %v", r.status, r.body)
	}
}

// jsonDetail finds the detail of the given type in a Connect error body
// and decodes its base64 value into m.
func jsonDetail(t *testing.T, body obj, typ string, m proto.Message) {
	t.Helper()
	ds, _ := body["details"].([]any)
	for _, d := range ds {
		d, _ := d.(obj)
		if d["type"] != typ {
			continue
		}
		s, _ := d["value"].(string)
		b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			t.Fatalf("detail %s: value %q: %v", typ, s, err)
		}
		if err := proto.Unmarshal(b, m); err != nil {
			t.Fatalf("detail %s: %v", typ, err)
		}
		return
	}
	t.Errorf("no %s detail in %v", typ, body)
}

// TestCurlGetCheck is `curl 'URL/optout.v1.OptOutService/Check?encoding=json&message=...'`.
func TestCurlGetCheck(t *testing.T) {
	store := memStore()
	s := serve(t, store, api.Options{})
	hc := http1Client(t)
	curlPost(t, hc, s.URL, "/optout.v1.OptOutService/Set", `{"subjectId":"u1","purpose":"email_marketing","state":"STATE_OPTED_OUT"}`)

	get := func(path, msg string) rawResult {
		t.Helper()
		q := url.Values{"encoding": {"json"}, "message": {msg}}
		req, err := http.NewRequest(http.MethodGet, s.URL+path+"?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return rawDo(t, hc, req)
	}
	r := get("/optout.v1.OptOutService/Check", `{"subjectId":"u1","purpose":"email_marketing"}`)
	if r.status != http.StatusOK {
		t.Fatalf("GET Check: %d %v", r.status, r.body)
	}
	wantJSON(t, "GET Check", r.body, obj{"decision": "DECISION_DENY", "state": "STATE_OPTED_OUT", "version": "41", "readIndex": "41"})

	// Validation applies to GET too, and a write is never served over GET.
	sets, reads := store.setCalls.Load(), store.readCalls.Load()
	r = get("/optout.v1.OptOutService/Check", `{"subjectId":"u1","purpose":"Email Marketing"}`)
	if r.body["code"] != "invalid_argument" || !strings.Contains(r.body["message"].(string), "purpose") {
		t.Errorf("GET Check with a bad purpose: %d %v", r.status, r.body)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/optout.v1.OptOutService/Set?encoding=json&message="+
		url.QueryEscape(`{"subjectId":"u1","purpose":"email_marketing","state":"STATE_OPTED_IN"}`), nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("GET Set succeeded")
	}
	if store.setCalls.Load() != sets || store.readCalls.Load() != reads {
		t.Errorf("rejected GETs reached the store")
	}
}

// TestCurlRejectsWhatItDoesNotUnderstand: unknown fields (a typo must not
// turn a compare-and-set into a blind write), empty bodies, bad JSON, and
// the charset variant of the content type is accepted.
func TestCurlRejectsWhatItDoesNotUnderstand(t *testing.T) {
	store := memStore()
	s := serve(t, store, api.Options{})
	hc := h2cClient(t)
	for _, tc := range []struct{ name, path, body, mention string }{
		{"typo in expectedVersion", "/optout.v1.OptOutService/Set",
			`{"subjectId":"u1","purpose":"email_marketing","state":"STATE_OPTED_OUT","expectedVerison":"3"}`, "expectedVerison"},
		{"unknown field in Check", "/optout.v1.OptOutService/Check", `{"subjectId":"u1","purpose":"p","consistency":"weak"}`, "consistency"},
		{"unknown field in a batch entry", "/optout.v1.OptOutService/CheckBatch", `{"checks":[{"subjectId":"u1","purpose":"p","x":1}]}`, `"x"`},
		{"unknown field in Status", "/optout.v1.ClusterService/Status", `{"verbose":true}`, "verbose"},
		{"unknown state name", "/optout.v1.OptOutService/Set", `{"subjectId":"u1","purpose":"p","state":"OPTED_OUT"}`, "OPTED_OUT"},
		{"uint64 out of range", "/optout.v1.OptOutService/Set", `{"subjectId":"u1","purpose":"p","state":"STATE_OPTED_OUT","expectedVersion":"-1"}`, "expected"},
		{"empty body", "/optout.v1.OptOutService/Check", ``, "empty body"},
		{"not JSON", "/optout.v1.OptOutService/Check", `subjectId=u1`, ""},
		{"array", "/optout.v1.OptOutService/Check", `[]`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := curlPost(t, hc, s.URL, tc.path, tc.body)
			msg, _ := r.body["message"].(string)
			if r.status == http.StatusOK || r.body["code"] != "invalid_argument" || !strings.Contains(msg, tc.mention) {
				t.Errorf("%d %v; want invalid_argument mentioning %q", r.status, r.body, tc.mention)
			}
		})
	}
	for _, v := range []string{"two", "0", "-1", "99999999999"} {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/optout.v1.OptOutService/Check", strings.NewReader(`{"subjectId":"u1","purpose":"email_marketing"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Optout-Schema-Version", v)
		r := rawDo(t, hc, req)
		if msg, _ := r.body["message"].(string); r.body["code"] != "invalid_argument" || !strings.Contains(msg, "Optout-Schema-Version") {
			t.Errorf("schema version header %q: %d %v", v, r.status, r.body)
		}
	}
	if n := store.calls(); n != 0 {
		t.Errorf("rejected requests made %d store calls", n)
	}

	req, _ := http.NewRequest(http.MethodPost, s.URL+"/optout.v1.OptOutService/Check", strings.NewReader(`{"subjectId":"u1","purpose":"email_marketing"}`))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if r := rawDo(t, hc, req); r.status != http.StatusOK || r.body["decision"] != "DECISION_ALLOW" {
		t.Errorf("charset=utf-8: %d %v", r.status, r.body)
	}
}

func TestHealthzReadyzMetrics(t *testing.T) {
	var ready atomic.Bool
	store := memStore()
	store.ReadyFn = func() error {
		if !ready.Load() {
			return errors.New("no leader known")
		}
		return nil
	}
	s := serve(t, store, api.Options{Gatherer: promGatherer(t)})
	noMetrics := serve(t, store, api.Options{})
	hc := http1Client(t)
	get := func(base, path string) (int, string) {
		t.Helper()
		resp, err := hc.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(s.URL, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(s.URL, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no leader known") {
		t.Errorf("/readyz while not ready: %d %q", code, body)
	}
	ready.Store(true)
	if code, body := get(s.URL, "/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz when ready: %d %q", code, body)
	}
	if code, body := get(s.URL, "/metrics"); code != http.StatusOK || !strings.Contains(body, "optoutd_test_metric 1") {
		t.Errorf("/metrics: %d %q", code, body)
	}
	if code, _ := get(noMetrics.URL, "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics without a Gatherer: %d, want 404", code)
	}
	if store.calls() != 0 {
		t.Errorf("probes made store calls")
	}
	if code := postStatus(t, hc, s.URL+"/healthz"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d, want 405", code)
	}
}

func promGatherer(t *testing.T) prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "optoutd_test_metric", Help: "test"})
	g.Set(1)
	if err := reg.Register(g); err != nil {
		t.Fatal(err)
	}
	return reg
}

func postStatus(t *testing.T, hc *http.Client, u string) int {
	t.Helper()
	resp, err := hc.Post(u, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
