package checker

import (
	"fmt"

	"github.com/optoutd/optoutd/jepsen/history"
)

// WatchChange is one change a watcher received: the audit entry's version,
// subject (the history's key), source (the writer's tag) and new state.
type WatchChange struct {
	Version uint64 `json:"v"`
	Key     string `json:"key"`
	Tag     string `json:"tag"`
	State   string `json:"state"`
}

// WatchStream is everything one watcher received over a run, across all
// its reconnects.
type WatchStream struct {
	Node    string
	Changes []WatchChange
	// Cursor is the highest version up to which the stream promised to
	// have delivered every change (its last change or progress message).
	Cursor   uint64
	Restarts int
	// Errors are the first few reasons the watcher had to start a new
	// Watch call.
	Errors []string
}

// WatchResult is the verdict of the watch workload: every acknowledged
// change arrives on every stream exactly once, in version order, and the
// streams agree with each other.
type WatchResult struct {
	Valid      bool   `json:"valid"`
	Streams    int    `json:"streams"`
	Delivered  int    `json:"delivered"`
	Restarts   int    `json:"restarts"`
	FinalIndex uint64 `json:"final_index"`
	// Missed: an acknowledged write at or below a stream's cursor that the
	// stream never delivered.
	Missed []string `json:"missed,omitempty"`
	// Phantom: a delivered change that no write could have made (unknown
	// tag, a write answered "not applied", or another version, key or state
	// than the acknowledged write's).
	Phantom []string `json:"phantom,omitempty"`
	// Duplicate: one write delivered twice on one stream.
	Duplicate []string `json:"duplicate,omitempty"`
	// OutOfOrder: a version at or below the one before it.
	OutOfOrder []string `json:"out_of_order,omitempty"`
	// Divergent: two streams that disagree on the changes both covered.
	Divergent []string `json:"divergent,omitempty"`
	// Stalled: a stream that never reached the cluster's final applied
	// index after healing.
	Stalled []string `json:"stalled,omitempty"`
}

// maxWatchDetails bounds each list; the first few say what went wrong.
const maxWatchDetails = 10

// CheckWatch compares what every watcher received with the history's
// writes. finalIndex is the applied index all nodes converged on (0 when
// they did not, and then no stream is called stalled: convergence already
// failed the run).
func CheckWatch(ops []history.Op, streams []WatchStream, finalIndex uint64) WatchResult {
	res := WatchResult{Streams: len(streams), FinalIndex: finalIndex}
	writes := map[string]history.Op{} // by tag; every write has its own
	var acked []history.Op
	for _, op := range ops {
		if !op.Type.IsWrite() || op.Tag == "" {
			continue
		}
		writes[op.Tag] = op
		if op.Outcome == history.OK && op.Version > 0 {
			acked = append(acked, op)
		}
	}
	note := func(list *[]string, format string, args ...any) {
		if len(*list) < maxWatchDetails {
			*list = append(*list, fmt.Sprintf(format, args...))
		}
	}
	for _, s := range streams {
		res.Delivered += len(s.Changes)
		res.Restarts += s.Restarts
		byVersion := make(map[uint64]WatchChange, len(s.Changes))
		seen := make(map[string]uint64, len(s.Changes))
		for i, c := range s.Changes {
			if i > 0 && c.Version <= s.Changes[i-1].Version {
				note(&res.OutOfOrder, "%s: version %d delivered after %d", s.Node, c.Version, s.Changes[i-1].Version)
			}
			if v, dup := seen[c.Tag]; dup {
				note(&res.Duplicate, "%s: write %s delivered at versions %d and %d", s.Node, c.Tag, v, c.Version)
			}
			seen[c.Tag] = c.Version
			byVersion[c.Version] = c
			if why := phantom(c, writes); why != "" {
				note(&res.Phantom, "%s: change v%d of %s (tag %q, %s): %s", s.Node, c.Version, c.Key, c.Tag, c.State, why)
			}
		}
		for _, op := range acked {
			if op.Version > s.Cursor {
				continue // beyond what the stream covered; Stalled speaks for it
			}
			if c, ok := byVersion[op.Version]; !ok || c.Tag != op.Tag {
				note(&res.Missed, "%s: acknowledged %s %s of %s at v%d never delivered (stream covered up to v%d)",
					s.Node, op.Type, op.Tag, op.Key, op.Version, s.Cursor)
			}
		}
		if finalIndex > 0 && s.Cursor < finalIndex {
			note(&res.Stalled, "%s: stream reached v%d, the cluster applied v%d (%d restarts; %v)",
				s.Node, s.Cursor, finalIndex, s.Restarts, s.Errors)
		}
	}
	for i := 1; i < len(streams); i++ {
		if d := diverge(streams[0], streams[i]); d != "" {
			note(&res.Divergent, "%s", d)
		}
	}
	res.Valid = len(res.Missed)+len(res.Phantom)+len(res.Duplicate)+len(res.OutOfOrder)+
		len(res.Divergent)+len(res.Stalled) == 0
	return res
}

// phantom says why no write of the history can have made c, or "".
func phantom(c WatchChange, writes map[string]history.Op) string {
	op, ok := writes[c.Tag]
	switch {
	case !ok:
		return "no write has this tag"
	case op.Outcome == history.NotApplied:
		return "its write was answered not applied"
	case op.Outcome == history.Mismatch:
		return "its write was refused (version mismatch)"
	case op.Key != c.Key || op.State != c.State:
		return fmt.Sprintf("its write set %s of %s", op.State, op.Key)
	case op.Outcome == history.OK && op.Version != c.Version:
		return fmt.Sprintf("its write was acknowledged at v%d", op.Version)
	}
	return ""
}

// diverge compares two streams over the versions both covered and
// describes the first difference, or returns "".
func diverge(a, b WatchStream) string {
	upTo := min(a.Cursor, b.Cursor)
	ca, cb := covered(a.Changes, upTo), covered(b.Changes, upTo)
	only := func(x, y WatchStream, c WatchChange) string {
		return fmt.Sprintf("%s delivered v%d (%s) that %s did not, though both covered up to v%d", x.Node, c.Version, c.Tag, y.Node, upTo)
	}
	i, j := 0, 0
	for i < len(ca) || j < len(cb) {
		switch {
		case j == len(cb) || (i < len(ca) && ca[i].Version < cb[j].Version):
			return only(a, b, ca[i])
		case i == len(ca) || cb[j].Version < ca[i].Version:
			return only(b, a, cb[j])
		case ca[i] != cb[j]:
			return fmt.Sprintf("%s and %s differ at v%d: %+v against %+v", a.Node, b.Node, ca[i].Version, ca[i], cb[j])
		}
		i++
		j++
	}
	return ""
}

// covered is the prefix of changes at or below upTo.
func covered(changes []WatchChange, upTo uint64) []WatchChange {
	n := 0
	for n < len(changes) && changes[n].Version <= upTo {
		n++
	}
	return changes[:n]
}
