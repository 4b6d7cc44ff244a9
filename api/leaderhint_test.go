package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/optoutd/optoutd/api"
	"github.com/optoutd/optoutd/api/wire"
)

// hintingStore is a fakeStore that knows a leader's API address.
type hintingStore struct {
	*fakeStore
	leader string
}

func (s hintingStore) LeaderAPIAddress() string { return s.leader }

// TestLeaderHintOnEveryAnswer: answers and errors alike name the leader's
// API address when the store knows it, and carry no hint when it does not.
func TestLeaderHintOnEveryAnswer(t *testing.T) {
	for _, leader := range []string{"10.0.0.2:7001", ""} {
		s := serve(t, hintingStore{fakeStore: &fakeStore{}, leader: leader}, api.Options{})
		hc := http1Client(t)
		for _, tc := range []struct{ method, path, body string }{
			{http.MethodGet, "/healthz", ""},
			// The fake store has no Read: an internal error.
			{http.MethodPost, "/optout.v1.OptOutService/Check", `{"subjectId":"u1","purpose":"email_marketing"}`},
		} {
			req, err := http.NewRequest(tc.method, s.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if got := resp.Header.Get(wire.HeaderLeader); got != leader {
				t.Errorf("%s %s (status %d): %s %q, want %q", tc.method, tc.path, resp.StatusCode, wire.HeaderLeader, got, leader)
			}
		}
	}
}
