package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"net/http"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/optoutd/optoutd/client"
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
