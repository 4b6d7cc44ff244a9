package client_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
)

// The examples run against a real three-node cluster that TestMain starts
// (examplecluster_test.go); in a service, pass your cluster's API
// addresses to client.New.

func optOut(c *client.Client, subject, purpose string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Set(ctx, &optoutv1.SetRequest{SubjectId: subject, Purpose: purpose, State: optoutv1.State_STATE_OPTED_OUT, Source: "example"}); err != nil {
		log.Fatal(err)
	}
}

// Gate an HTTP handler: requests about a subject who opted out of the
// purpose never reach it; so neither do those the gate cannot confirm
// (503, fail closed), nor those without a subject (400), nor, for a
// purpose that honours it, those that carry Sec-GPC: 1.
func ExampleHTTPGate() {
	c, err := client.New(exampleEndpoints)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	optOut(c, "ex-http-2", "targeted_advertising")

	track := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := client.DecisionFrom(r.Context())
		fmt.Fprintf(w, "tracked at read index >= %d", d.Check.ReadIndex)
	})
	gated := client.HTTPGate{
		Gater:     c,
		Purpose:   "targeted_advertising",
		Subject:   func(r *http.Request) (string, error) { return r.Header.Get("X-User"), nil },
		HonourGPC: true,
	}.Wrap(track)

	for _, req := range []struct{ user, gpc string }{{"ex-http-1", ""}, {"ex-http-2", ""}, {"", ""}, {"ex-http-1", "1"}} {
		r := httptest.NewRequest(http.MethodPost, "/track", nil)
		r.Header.Set("X-User", req.user)
		if req.gpc != "" {
			r.Header.Set("Sec-GPC", req.gpc)
		}
		w := httptest.NewRecorder()
		gated.ServeHTTP(w, r)
		fmt.Printf("user %q gpc %q: %d\n", req.user, req.gpc, w.Code)
	}
	// Output:
	// user "ex-http-1" gpc "": 200
	// user "ex-http-2" gpc "": 403
	// user "" gpc "": 400
	// user "ex-http-1" gpc "1": 403
}

// Gate a queue consumer: the producer gates each event with a receipt and
// puts the receipt on the event; the consumer fences at processing time,
// so an event that waited in the queue (or was redelivered) while its
// subject opted out is dropped, not processed.
func ExampleClient_ProcessFenced() {
	c, err := client.New(exampleEndpoints)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	type event struct{ Subject, Receipt string }
	var queue []event
	for _, subject := range []string{"ex-queue-1", "ex-queue-2"} {
		d, err := c.Gate(ctx, subject, "email_marketing", client.WithReceipt())
		if !d.Allow {
			log.Printf("not queued: %v", err)
			continue
		}
		queue = append(queue, event{subject, d.Check.Receipt})
	}
	optOut(c, "ex-queue-2", "email_marketing") // while its event waits

	for _, ev := range queue {
		f, err := c.ProcessFenced(ctx, "mailer", ev.Receipt, ev.Subject, func(context.Context) error {
			fmt.Println("sent to", ev.Subject)
			return nil
		})
		if err != nil {
			log.Printf("fence failed closed, event kept for retry: %v", err)
			continue
		}
		if !f.Process {
			fmt.Println("dropped", ev.Subject+":", f.Answer.Reason)
		}
	}
	// Output:
	// sent to ex-queue-1
	// dropped ex-queue-2: DISCARD_REASON_DENIED_NOW
}

// Use the linearizable cache: each lookup still confirms a fresh read
// index with the cluster (one round shared by concurrent lookups), but the
// answer comes from memory once the watch stream has reached it; a change
// reaches the cache before any lookup that starts after it was
// acknowledged.
func ExampleNewCache() {
	c, err := client.New(exampleEndpoints)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cache, err := client.NewCache(ctx, c, client.CacheOptions{Purposes: []string{"analytics"}})
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	for i := 0; i < 2; i++ {
		d, err := cache.Gate(ctx, "ex-cache-1", "analytics")
		fmt.Println("allow:", d.Allow, "cached:", d.Cached, "err:", err)
	}
	optOut(c, "ex-cache-1", "analytics")
	d, err := cache.Gate(ctx, "ex-cache-1", "analytics")
	fmt.Println("after the opt-out, allow:", d.Allow, "err:", err)
	// Output:
	// allow: true cached: false err: <nil>
	// allow: true cached: true err: <nil>
	// after the opt-out, allow: false err: <nil>
}
