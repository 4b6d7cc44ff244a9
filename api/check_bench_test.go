package api_test

import (
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

// BenchmarkCheckHandler is the Check handler's cost per call (issue 11):
// the HTTP server, Connect's binary codec, the interceptors, the schema
// gate and the decision, over a store whose read is a map (no read index:
// that is the cluster's, measured by the sweep). The client's side of the
// loopback round trip is in the figure too. Allocation counts are
// reported; speed is compared, never asserted.
func BenchmarkCheckHandler(b *testing.B) {
	st := memStore()
	if _, err := st.SetFn(ctx(b), optoutd.SetRequest{Key: optoutd.Key{SubjectID: "u1", Purpose: "email_marketing"}, State: optoutd.StateOptedOut}); err != nil {
		b.Fatal(err)
	}
	s := serve(b, st, api.Options{})
	c := optoutv1connect.NewOptOutServiceClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}, s.URL)
	req := connect.NewRequest(&optoutv1.CheckRequest{SubjectId: "u1", Purpose: "email_marketing"})
	req.Header().Set("Optout-Schema-Version", "4")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r, err := c.Check(ctx(b), req)
		if err != nil {
			b.Fatal(err)
		}
		if r.Msg.Decision != optoutv1.Decision_DECISION_DENY {
			b.Fatalf("decision %v", r.Msg.Decision)
		}
	}
}
