package jepsen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"net/http"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/jepsen/checker"
	"github.com/optoutd/optoutd/jepsen/db"
	"github.com/optoutd/optoutd/jepsen/workload"
)

// cluster joins a backend with one single-endpoint client per node; it is
// the nemesis's Cluster.
type cluster struct {
	db.Backend
	ids     []string
	clients map[string]*client.Client
}

func newCluster(b db.Backend) (*cluster, error) {
	c := &cluster{Backend: b, clients: map[string]*client.Client{}}
	for _, n := range b.Nodes() {
		cl, err := client.New([]string{n.API})
		if err != nil {
			return nil, fmt.Errorf("jepsen: client for %s: %w", n.ID, err)
		}
		c.ids = append(c.ids, n.ID)
		c.clients[n.ID] = cl
	}
	return c, nil
}

func (c *cluster) NodeIDs() []string { return c.ids }

// RaftAddr is node id's Raft address.
func (c *cluster) RaftAddr(id string) string {
	for _, n := range c.Nodes() {
		if n.ID == id {
			return n.Raft
		}
	}
	return ""
}

func (c *cluster) Status(ctx context.Context, id string) (*optoutv1.StatusResponse, error) {
	cl, ok := c.clients[id]
	if !ok {
		return nil, fmt.Errorf("jepsen: no node %q", id)
	}
	return cl.StatusOf(ctx, 0)
}

func (c *cluster) endpoints() []workload.Endpoint {
	var eps []workload.Endpoint
	for _, n := range c.Nodes() {
		eps = append(eps, workload.Endpoint{Node: n.ID, Addr: n.API})
	}
	return eps
}

func (c *cluster) close() {
	for _, cl := range c.clients {
		cl.Close()
	}
}

// poll calls f every interval until it returns true or ctx ends.
func poll(ctx context.Context, interval time.Duration, f func() bool) bool {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if f() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// waitReady waits until every node names the same leader and serves a
// linearizable read.
func (c *cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	ok := poll(ctx, 200*time.Millisecond, func() bool {
		leader := ""
		for _, id := range c.ids {
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			st, err := c.Status(rctx, id)
			if err == nil && st.LeaderId != "" && (leader == "" || leader == st.LeaderId) {
				leader = st.LeaderId
				_, err = c.clients[id].Get(rctx, &optoutv1.GetRequest{SubjectId: "ready-probe", Purpose: workload.Purpose})
				if connect.CodeOf(err) == connect.CodeNotFound {
					err = nil
				}
			} else if err == nil {
				err = fmt.Errorf("leader %q, others say %q", st.LeaderId, leader)
			}
			rcancel()
			if err != nil {
				last = fmt.Sprintf("%s: %v", id, err)
				return false
			}
		}
		return true
	})
	if !ok {
		return fmt.Errorf("jepsen: cluster not ready after %v (last: %s)", timeout, last)
	}
	return nil
}

// definePurposes defines the purposes the workload uses (Set refuses an
// undefined purpose), each through whichever node accepts it. A server
// without a catalog (Unimplemented) needs none.
func (c *cluster) definePurposes(ctx context.Context, timeout time.Duration, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, name := range names {
		var last error
		ok := poll(ctx, 200*time.Millisecond, func() bool {
			for _, n := range c.Nodes() {
				cat := optoutv1connect.NewCatalogServiceClient(http.DefaultClient, "http://"+n.API)
				rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := cat.DefinePurpose(rctx, connect.NewRequest(&optoutv1.DefinePurposeRequest{Purpose: &optoutv1.Purpose{
					Name: name, Description: "keys written by the chaos harness", DefaultDecision: optoutv1.Default_DEFAULT_ALLOW}}))
				rcancel()
				if err == nil || connect.CodeOf(err) == connect.CodeUnimplemented {
					return true
				}
				last = fmt.Errorf("%s: %w", n.ID, err)
			}
			return false
		})
		if !ok {
			return fmt.Errorf("jepsen: define purpose %q: %w", name, last)
		}
	}
	return nil
}

// RemoveMember asks the nodes other than id, in turn, to remove id.
func (c *cluster) RemoveMember(ctx context.Context, id string) error {
	var last error
	for _, n := range c.Nodes() {
		if n.ID == id {
			continue
		}
		cs := optoutv1connect.NewClusterServiceClient(http.DefaultClient, "http://"+n.API)
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := cs.RemoveMember(rctx, connect.NewRequest(&optoutv1.RemoveMemberRequest{Id: id}))
		cancel()
		if err == nil {
			return nil
		}
		last = fmt.Errorf("via %s: %w", n.ID, err)
		if connect.CodeOf(err) == connect.CodeFailedPrecondition || connect.CodeOf(err) == connect.CodeUnimplemented {
			return last // refused: asking elsewhere will not help
		}
	}
	return last
}

// Rejoin wipes id and starts it with --join naming every other node.
func (c *cluster) Rejoin(ctx context.Context, id string) error {
	var join []string
	for _, n := range c.Nodes() {
		if n.ID != id {
			join = append(join, n.API)
		}
	}
	return c.Backend.Rejoin(ctx, id, join)
}

// digests asks every node for its state digest, concurrently.
func (c *cluster) digests(ctx context.Context) []checker.Digest {
	out := make([]checker.Digest, len(c.ids))
	var wg sync.WaitGroup
	for i, id := range c.ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			d, err := c.clients[id].StateDigestOf(rctx, 0)
			if err != nil {
				out[i] = checker.Digest{Node: id, Err: err.Error()}
				return
			}
			out[i] = checker.Digest{Node: id, AppliedIndex: d.AppliedIndex, SHA256: d.Sha256, Records: d.Records}
		}()
	}
	wg.Wait()
	return out
}

// converge polls digests until they agree or timeout passes. Equal applied
// indexes with different digests is divergence: it is reported at once.
func (c *cluster) converge(ctx context.Context, timeout time.Duration) checker.ConvergenceResult {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := checker.ConvergenceResult{Reason: "never polled"}
	poll(ctx, 250*time.Millisecond, func() bool {
		r := checker.CheckConvergence(c.digests(ctx))
		if ctx.Err() != nil {
			return true // cut short by the deadline: keep the last full poll
		}
		res = r
		return res.Valid || diverged(res.Digests)
	})
	res.WaitedSeconds = time.Since(start).Seconds()
	if !res.Valid && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		res.Reason = fmt.Sprintf("not converged after %v: %s", timeout, res.Reason)
	}
	return res
}

func diverged(ds []checker.Digest) bool {
	for _, a := range ds {
		for _, b := range ds {
			if a.Err == "" && b.Err == "" && a.AppliedIndex == b.AppliedIndex && a.SHA256 != b.SHA256 {
				return true
			}
		}
	}
	return false
}
