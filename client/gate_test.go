package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
)

// TestGateFailsClosed: every way of not getting an answer is a deny, with
// the error: no node listening, every node unavailable, a node that
// answers after the deadline, and a bad request. An allow needs the
// cluster's DECISION_ALLOW.
func TestGateFailsClosed(t *testing.T) {
	stop := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); slow.Close() })
	unavailable := (&node{name: "unavailable", read: func() error {
		return connect.NewError(connect.CodeUnavailable, errors.New("no leader"))
	}}).start(t)
	invalid := (&node{name: "invalid", read: func() error {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("purpose: bad"))
	}}).start(t)
	for name, eps := range map[string][]string{
		"nothing listens":          {refused(t)},
		"every node refuses":       {unavailable.url},
		"slower than the deadline": {slow.URL},
		"a bad request":            {invalid.url},
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, eps)
			dctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			d, err := c.Gate(dctx, "u1", "email_marketing")
			if d.Allow || !d.FailedClosed || err == nil || d.Check != nil {
				t.Fatalf("Gate = %+v, %v; want a fail-closed deny with an error", d, err)
			}
			ds, err := c.GateBatch(dctx, []client.GateCheck{{"u1", "email_marketing"}, {"u2", "analytics"}})
			if err == nil || len(ds) != 2 || ds[0].Allow || ds[1].Allow || !ds[0].FailedClosed {
				t.Fatalf("GateBatch = %+v, %v; want two fail-closed denies", ds, err)
			}
		})
	}
	allow := (&node{name: "allow"}).start(t)
	allow.decision = optoutv1.Decision_DECISION_ALLOW
	c := newClient(t, []string{allow.url})
	d, err := c.Gate(ctx(t), "u1", "email_marketing")
	if err != nil || !d.Allow || d.FailedClosed || d.Check.ReadIndex != 42 {
		t.Fatalf("Gate against an allowing node: %+v, %v", d, err)
	}
}

// TestGateOfAnUnencodableSubjectFailsAtOnce: a subject that is not valid
// UTF-8 cannot be marshalled; connect calls that "internal", but no node
// was asked, so it is not retried until the deadline (the chaos suite saw
// every such Gate take its whole deadline): it fails closed at once.
func TestGateOfAnUnencodableSubjectFailsAtOnce(t *testing.T) {
	allow := (&node{name: "allow"}).start(t)
	c := newClient(t, []string{allow.url})
	d, err := c.Gate(context.Background(), "bad\xff", "email_marketing")
	var all *client.AllFailedError
	if d.Allow || !d.FailedClosed || err == nil || errors.As(err, &all) {
		t.Fatalf("Gate of a non-UTF-8 subject = %+v, %v; want a fail-closed deny with the encoding error, not a retried failure", d, err)
	}
	if _, err := c.Fence(context.Background(), "mailer", "optr1.x", "bad\xff"); err == nil || errors.As(err, &all) {
		t.Fatalf("Fence of a non-UTF-8 subject: %v", err)
	}
	t.Log(err)
}
