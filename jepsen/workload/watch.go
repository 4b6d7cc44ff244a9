package workload

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/jepsen/checker"
)

// Watchers follow the harness purpose's change stream, one watcher per
// node, from version 0, for the whole run and through healing. Each uses
// the product client's Watch, which reconnects to the next endpoint from
// the last version delivered when a stream breaks; when Watch itself gives
// up (a removed node answers failed_precondition) the watcher starts a new
// one from its cursor on the next node. What they receive is checked by
// checker.CheckWatch.
type Watchers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	all    []*watcher
}

type watcher struct {
	first int // index of the node this watcher starts on
	addrs []string
	log   *slog.Logger

	mu     sync.Mutex
	stream checker.WatchStream
}

// maxWatchErrors bounds the restart reasons kept per watcher.
const maxWatchErrors = 5

// StartWatchers starts one watcher per endpoint; they run until Stop.
func StartWatchers(eps []Endpoint, log *slog.Logger) *Watchers {
	ctx, cancel := context.WithCancel(context.Background())
	ws := &Watchers{cancel: cancel}
	addrs := make([]string, len(eps))
	for i, ep := range eps {
		addrs[i] = ep.Addr
	}
	for i, ep := range eps {
		w := &watcher{first: i, addrs: addrs, log: log, stream: checker.WatchStream{Node: ep.Node}}
		ws.all = append(ws.all, w)
		ws.wg.Add(1)
		go func() { defer ws.wg.Done(); w.run(ctx) }()
	}
	return ws
}

// CatchUp waits until every watcher's cursor has reached index, or ctx
// ends; it reports whether they all did.
func (ws *Watchers) CatchUp(ctx context.Context, index uint64) bool {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		behind := false
		for _, w := range ws.all {
			w.mu.Lock()
			behind = behind || w.stream.Cursor < index
			w.mu.Unlock()
		}
		if !behind {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// Stop ends every watcher and returns what each received.
func (ws *Watchers) Stop() []checker.WatchStream {
	ws.cancel()
	ws.wg.Wait()
	out := make([]checker.WatchStream, len(ws.all))
	for i, w := range ws.all {
		out[i] = w.stream // no watcher runs any more
	}
	return out
}

func (w *watcher) run(ctx context.Context) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		// Start on this watcher's own node; after each give-up, on the next.
		eps := make([]string, 0, len(w.addrs))
		for k := range w.addrs {
			eps = append(eps, w.addrs[(w.first+attempt+k)%len(w.addrs)])
		}
		err := w.watch(ctx, eps)
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		w.stream.Restarts++
		if len(w.stream.Errors) < maxWatchErrors {
			w.stream.Errors = append(w.stream.Errors, errText(err))
		}
		w.mu.Unlock()
		w.log.Debug("watch ended; starting a new one on the next node", "node", w.stream.Node, "error", err)
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func (w *watcher) watch(ctx context.Context, eps []string) error {
	cl, err := client.New(eps)
	if err != nil {
		return err
	}
	defer cl.Close()
	w.mu.Lock()
	from := w.stream.Cursor
	w.mu.Unlock()
	err = cl.Watch(ctx, from, []string{Purpose}, w.deliver)
	if err == nil {
		err = errors.New("watch returned without an error")
	}
	return err
}

func (w *watcher) deliver(ev client.WatchEvent) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := ev.Change; c != nil {
		w.stream.Changes = append(w.stream.Changes, checker.WatchChange{Version: c.GetVersion(), Key: c.GetSubjectId(),
			Tag: c.GetSource(), State: stateName(c.GetNewState())})
		w.stream.Cursor = max(w.stream.Cursor, c.GetVersion())
		return nil
	}
	w.stream.Cursor = max(w.stream.Cursor, ev.Progress)
	return nil
}
