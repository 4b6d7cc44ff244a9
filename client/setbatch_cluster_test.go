package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/optoutd/optoutd/client"
	"google.golang.org/protobuf/encoding/protojson"
)

var errSeenAll = errors.New("seen every change")

// TestSetBatchAgainstTheCluster: on the real three-node cluster a batch
// writes its records at one version, reports a refused write in its item,
// replays under its key, shows in Checks on every node, and reaches a
// watcher as whole versions.
func TestSetBatchAgainstTheCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(exampleEndpoints)
	if err != nil {
		t.Fatal(err)
	}
	base, err := c.Set(ctx, &optoutv1.SetRequest{SubjectId: "batch-u0", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT})
	if err != nil {
		t.Fatal(err)
	}
	req := &optoutv1.SetBatchRequest{IdempotencyKey: "batch-test-1"}
	for i := range 50 {
		req.Sets = append(req.Sets, &optoutv1.SetRequest{SubjectId: fmt.Sprintf("batch-u%d", i+1), Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT, Source: "import"})
	}
	// Deny wins inside a batch too: an opt-in without the version.
	req.Sets = append(req.Sets, &optoutv1.SetRequest{SubjectId: "batch-u0", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_IN})
	res, err := c.SetBatch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 51 || res.Version <= base.Version {
		t.Fatalf("%d results at version %d", len(res.Results), res.Version)
	}
	for i, r := range res.Results[:50] {
		if r.ErrorCode != "" || r.Record.GetVersion() != res.Version {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if last := res.Results[50]; last.ErrorCode != connect.CodeFailedPrecondition.String() || last.CurrentVersion != base.Version {
		t.Fatalf("the opt-in over an opt-out: %+v", last)
	}
	again, err := c.SetBatch(ctx, req)
	if err != nil || !again.Replayed || again.Version != res.Version {
		t.Fatalf("retry under the key: %+v %v", again, err)
	}
	// Every node answers linearizably with the batch's writes.
	for _, ep := range exampleEndpoints {
		one, err := client.New([]string{ep})
		if err != nil {
			t.Fatal(err)
		}
		d, err := one.Check(ctx, &optoutv1.CheckRequest{SubjectId: "batch-u37", Purpose: "analytics"})
		if err != nil || d.Decision != optoutv1.Decision_DECISION_DENY || d.Version != res.Version {
			t.Fatalf("%s: %v %v", ep, d, err)
		}
	}
	// A watcher from just before the batch gets its 50 changes, in seq
	// order, all at the batch's version.
	seen := 0
	err = c.Watch(ctx, res.Version-1, []string{"analytics"}, func(ev client.WatchEvent) error {
		if ev.Change == nil {
			return nil
		}
		if ev.Change.Version != res.Version || ev.Change.Seq != uint32(seen) {
			return fmt.Errorf("change %d: version %d seq %d", seen, ev.Change.Version, ev.Change.Seq)
		}
		if seen++; seen == 50 {
			return errSeenAll
		}
		return nil
	})
	if !errors.Is(err, errSeenAll) {
		t.Fatalf("watch: %v after %d changes", err, seen)
	}
	// A client that declares no schema version (or one before 4) cannot
	// take a group: its watch fails at the batch, naming the upgrade.
	raw := optoutv1connect.NewOptOutServiceClient(http.DefaultClient, "http://"+exampleEndpoints[0])
	stream, err := raw.Watch(ctx, connect.NewRequest(&optoutv1.WatchRequest{FromVersion: res.Version - 1}))
	if err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
		if ch := stream.Msg().GetChange(); ch != nil && ch.Version == res.Version {
			t.Fatalf("an old client got a single change of the batch: %v", ch)
		}
	}
	if connect.CodeOf(stream.Err()) != connect.CodeFailedPrecondition || !contains(stream.Err().Error(), "schema version 4") {
		t.Fatalf("old client's watch: %v", stream.Err())
	}
	_ = stream.Close()
	// A bad write refuses the whole batch, naming it, and writes nothing.
	bad := &optoutv1.SetBatchRequest{Sets: []*optoutv1.SetRequest{
		{SubjectId: "batch-bad-1", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT},
		{SubjectId: "batch-bad-2", Purpose: "Not A Purpose", State: optoutv1.State_STATE_OPTED_OUT},
	}}
	_, err = c.SetBatch(ctx, bad)
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !contains(err.Error(), "sets[1].purpose") {
		t.Fatalf("bad batch: %v", err)
	}
	if _, err := c.Get(ctx, &optoutv1.GetRequest{SubjectId: "batch-bad-1", Purpose: "analytics"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("a refused batch wrote its first record: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestSetBatchDryRunAgainstTheCluster: a dry run, on any node, says what
// the batch would write and refuse, with the previous states, at the
// node's linearizable state, and writes nothing; the real batch then gives
// the same answers. The last part speaks JSON over plain HTTP, as curl
// would.
func TestSetBatchDryRunAgainstTheCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(exampleEndpoints)
	if err != nil {
		t.Fatal(err)
	}
	old, err := c.Set(ctx, &optoutv1.SetRequest{SubjectId: "dry-u0", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT})
	if err != nil {
		t.Fatal(err)
	}
	req := &optoutv1.SetBatchRequest{Sets: []*optoutv1.SetRequest{
		{SubjectId: "dry-u1", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT},
		{SubjectId: "dry-u0", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_IN}, // deny wins
		{SubjectId: "dry-u2", Purpose: "no_such_purpose", State: optoutv1.State_STATE_OPTED_OUT},
	}, DryRun: true}
	// A follower's dry run sees the write just acknowledged (read index).
	follower, err := client.New([]string{exampleEndpoints[len(exampleEndpoints)-1]})
	if err != nil {
		t.Fatal(err)
	}
	dry, err := follower.SetBatch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || dry.Version < old.Version || len(dry.Results) != 3 {
		t.Fatalf("dry run: %+v", dry)
	}
	codes := []string{"", connect.CodeFailedPrecondition.String(), connect.CodeNotFound.String()}
	for i, r := range dry.Results {
		if r.ErrorCode != codes[i] {
			t.Errorf("dry run result %d: %q %q, want %q", i, r.ErrorCode, r.ErrorMessage, codes[i])
		}
	}
	if dry.Results[1].CurrentVersion != old.Version {
		t.Errorf("deny wins: current version %d, want %d", dry.Results[1].CurrentVersion, old.Version)
	}
	if _, err := c.Get(ctx, &optoutv1.GetRequest{SubjectId: "dry-u1", Purpose: "analytics"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("the dry run wrote: %v", err)
	}
	// The real batch, sent as JSON.
	body := `{"sets":[{"subjectId":"dry-u1","purpose":"analytics","state":"STATE_OPTED_OUT","source":"curl"},` +
		`{"subjectId":"dry-u0","purpose":"analytics","state":"STATE_OPTED_IN"},` +
		`{"subjectId":"dry-u2","purpose":"no_such_purpose","state":"STATE_OPTED_OUT"}],"idempotencyKey":"dry-json-1"}`
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+exampleEndpoints[0]+optoutv1connect.OptOutServiceSetBatchProcedure, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hres, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer hres.Body.Close()
	raw, _ := io.ReadAll(hres.Body)
	if hres.StatusCode != http.StatusOK {
		t.Fatalf("JSON SetBatch: %s %s", hres.Status, raw)
	}
	var got optoutv1.SetBatchResponse
	if err := protojson.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	for i, r := range got.Results {
		if r.ErrorCode != codes[i] {
			t.Errorf("JSON result %d: %q, want %q (%s)", i, r.ErrorCode, codes[i], raw)
		}
	}
	if got.Results[0].GetRecord().GetSource() != "curl" || got.Results[0].PreviousState != optoutv1.State_STATE_UNSPECIFIED {
		t.Errorf("JSON result 0: %v", got.Results[0])
	}
	// Bad JSON input is refused with the field named, and writes nothing.
	bad := `{"sets":[{"subjectId":"dry-u3","purpose":"analytics","state":"STATE_OPTED_OUT","colour":"red"}]}`
	hreq, _ = http.NewRequestWithContext(ctx, http.MethodPost, "http://"+exampleEndpoints[0]+optoutv1connect.OptOutServiceSetBatchProcedure, strings.NewReader(bad))
	hreq.Header.Set("Content-Type", "application/json")
	hres2, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(hres2.Body)
	_ = hres2.Body.Close()
	if hres2.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "colour") {
		t.Errorf("unknown JSON field: %s %s", hres2.Status, raw)
	}
}
