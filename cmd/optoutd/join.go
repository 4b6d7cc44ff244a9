package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd/client"
)

// join asks the cluster, through any of endpoints, to add this node as a
// learner, retrying while no endpoint can take the request, until timeout.
// The cluster promotes the learner to voter once it has caught up.
//
// An attempt whose answer was lost (an election during the join) may still
// have been applied. The leader answers a retry for the same learner at the
// same address as a success; and once this node has received any of the
// log (received reports that), it was added, whatever the lost answer said,
// and the retry is not sent at all: by then it may already be a voter.
func join(ctx context.Context, log *slog.Logger, endpoints, id, raftAddr string, timeout time.Duration, received func() bool, opts ...client.Option) error {
	eps := strings.Split(endpoints, ",")
	c, err := client.New(eps, opts...)
	if err != nil {
		return fmt.Errorf("--join: %w", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backoff := 100 * time.Millisecond
	for {
		if received != nil && received() {
			log.Info("this node is receiving the cluster's log, so an earlier join attempt was applied", "via", endpoints)
			return nil
		}
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := c.AddMember(actx, id, raftAddr, true)
		acancel()
		if err == nil {
			log.Info("joined the cluster as a learner; the leader promotes it once caught up", "index", r.Index, "via", endpoints)
			return nil
		}
		switch connect.CodeOf(err) {
		case connect.CodeFailedPrecondition:
			// A listed member that was itself removed answers this way; the
			// client already tried the others. Keep trying until the
			// deadline, unless the refusal is the cluster's own.
			if !client.FromRemovedNode(err) {
				return fmt.Errorf("--join: %s refused to add %s at %s: %w", endpoints, id, raftAddr, err)
			}
		case connect.CodeUnauthenticated, connect.CodePermissionDenied:
			return fmt.Errorf("--join: %s refused to add %s at %s (members with --auth need an admin token: --join-token-file): %w", endpoints, id, raftAddr, err)
		case connect.CodeInvalidArgument, connect.CodeUnimplemented, connect.CodeNotFound:
			return fmt.Errorf("--join: %s refused to add %s at %s: %w", endpoints, id, raftAddr, err)
		}
		log.Warn("join attempt failed; retrying", "via", endpoints, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("--join: could not join through %s within %v (is that the API address of a running member? members serving HTTPS need --join-ca-file): %w", endpoints, timeout, err)
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
