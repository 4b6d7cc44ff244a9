package api_test

import (
	"errors"
	"net"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

// TestNewServerServesEveryProtocolOnOnePort runs the production
// http.Server (not httptest) the way cmd/optoutd does, through api.Serve,
// and calls it over HTTP/1.1 and h2c with every protocol.
func TestNewServerServesEveryProtocolOnOnePort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(ln.Addr().String(), api.NewHandler(memStore(), api.Options{}))
	done := make(chan error, 1)
	go func() { done <- api.Serve(srv, ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	url := "http://" + ln.Addr().String()
	for _, p := range protocols() {
		hc := p.httpClient(t)
		var major int
		hc.Transport = protoRecorder{hc.Transport, &major}
		r, err := optoutv1connect.NewOptOutServiceClient(hc, url, p.opts...).Check(ctx(t), connect.NewRequest(&optoutv1.CheckRequest{SubjectId: "u1", Purpose: "email_marketing"}))
		if err != nil {
			t.Errorf("%s: %v", p.name, err)
			continue
		}
		if r.Msg.Decision != optoutv1.Decision_DECISION_ALLOW {
			t.Errorf("%s: %v", p.name, r.Msg)
		}
		if want := map[bool]int{false: 1, true: 2}[p.h2c]; major != want {
			t.Errorf("%s: answered over HTTP/%d, want HTTP/%d", p.name, major, want)
		}
	}
}

// protoRecorder notes the HTTP version of each response.
type protoRecorder struct {
	next  http.RoundTripper
	major *int
}

func (r protoRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		*r.major = resp.ProtoMajor
	}
	return resp, err
}
