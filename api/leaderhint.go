package api

import (
	"net/http"

	"github.com/optoutd/optoutd/api/wire"
)

// LeaderHinter is implemented by a Store that knows the client API address
// of the current leader (store.Store does). The API then puts it on every
// response (wire.HeaderLeader), so that clients can send writes straight
// to the leader instead of through a follower, which forwards them.
type LeaderHinter interface {
	// LeaderAPIAddress is the leader's registered API address, "" when no
	// leader (or no address for it) is known.
	LeaderAPIAddress() string
}

// withLeaderHint sets wire.HeaderLeader before the handler runs, so it is
// on answers and errors alike.
func withLeaderHint(st Store, h http.Handler) http.Handler {
	lh, ok := st.(LeaderHinter)
	if !ok {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := lh.LeaderAPIAddress(); a != "" {
			w.Header().Set(wire.HeaderLeader, a)
		}
		h.ServeHTTP(w, r)
	})
}
