package store

import (
	"context"
	"log/slog"
	"time"

	"github.com/optoutd/optoutd"
)

// expiryBatch bounds the expiry entries one sweep proposes.
const expiryBatch = 100

// ExpireOverrides runs until ctx ends. Every interval, on the leader only,
// it proposes an expiry entry for each active override whose expiry is
// due by the leader's clock. Apply re-checks the due time against the
// entry's stamp, so an early or duplicate proposal (from a deposed leader)
// changes nothing. Until the entry applies, nodes already refuse to honour
// an override past its expiry by their own clocks (optoutd.WithOverrides).
func (s *Store) ExpireOverrides(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.node.IsLeader() {
			continue
		}
		for _, id := range s.dueOverrides(time.Now(), log) {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.EndOverride(pctx, id, true, "", 0, "")
			cancel()
			if err != nil && log != nil && optoutd.ErrorCode(err) != optoutd.FailedPrecondition {
				log.Warn("override expiry not written; retrying on the next sweep", "override", id, "err", err)
			}
		}
	}
}

func (s *Store) dueOverrides(now time.Time, log *slog.Logger) []uint64 {
	var due []uint64
	err := s.node.ReadLocal(func(v optoutd.View) error {
		active, err := v.ListOverrides(false, "", optoutd.MaxHistoryPage)
		for _, o := range active {
			if !now.Before(o.ExpiresAt) && len(due) < expiryBatch {
				due = append(due, o.ID)
			}
		}
		return err
	})
	if err != nil && log != nil {
		log.Warn("reading overrides for expiry", "err", err)
	}
	return due
}
