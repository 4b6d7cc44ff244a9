package offline_test

import (
	"context"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/store"
)

func key(s string) optoutd.Key { return optoutd.Key{SubjectID: s, Purpose: "email_marketing"} }

func set(ctx context.Context, n *cluster.Node, subject string, st optoutd.State, expected *uint64) (optoutd.Record, error) {
	res, err := store.New(n).Set(ctx, optoutd.SetRequest{Key: key(subject), State: st, Source: "test", ExpectedVersion: expected})
	return res.Record, err
}
