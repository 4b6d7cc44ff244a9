package cluster

import (
	"context"
	"errors"

	"github.com/optoutd/optoutd"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"github.com/optoutd/optoutd/fsm"
	"google.golang.org/protobuf/proto"
)

// Preview evaluates a command (a payload built by package command) as if
// it were the next log entry, against linearizable state (as Read), and
// returns the result applying it would give, without proposing it: the
// dry run of a write (fsm.Preview). It is stamped with this node's clock.
func (n *Node) Preview(ctx context.Context, payload proto.Message) (*fsmv1.Result, error) {
	if n.removed.Load() {
		return nil, n.removedError()
	}
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	if !n.cfg.UnsafeLocalReads {
		if _, err := n.linearizable(ctx); err != nil {
			return nil, err
		}
	}
	res, err := n.fsm.Preview(payload, n.now().UnixNano())
	if errors.Is(err, fsm.ErrHalted) {
		return nil, optoutd.WrapError(optoutd.Halted, err, "this node halted applying the log")
	}
	return res, err
}
