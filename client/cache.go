package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/optoutd/optoutd"
)

// The cache's refusals. A lookup that returns one answered nothing: Gate
// denies.
var (
	// ErrCacheDisconnected: the watch stream is down (cut, refused, or
	// reconnecting) and did not come back within MaxLag.
	ErrCacheDisconnected = errors.New("client: cache: watch stream disconnected")
	// ErrCacheLagging: the stream is up but had not delivered every change
	// up to the lookup's read index within MaxLag.
	ErrCacheLagging = errors.New("client: cache: watch stream lags behind the read index")
	// ErrCacheClosed: the cache was closed.
	ErrCacheClosed = errors.New("client: cache: closed")
)

// Cache limits and defaults (CacheOptions).
const (
	DefaultCacheSubjects     = 100_000
	MaxCacheSubjects         = 10_000_000
	DefaultCacheMaxLag       = 500 * time.Millisecond
	DefaultCacheRoundTimeout = 2 * time.Second
	DefaultCacheStallTimeout = 5 * time.Second
	// MaxCachePurposes is the most purposes a cache may follow (the
	// cluster's limit for one watch).
	MaxCachePurposes = 64

	maxCacheWait      = time.Minute      // MaxLag, RoundTimeout
	minStallTimeout   = 2 * time.Second  // the node sends progress every second when idle
	maxStallTimeout   = 10 * time.Minute // StallTimeout
	maxWatchBackoff   = time.Second
	firstWatchBackoff = 20 * time.Millisecond
)

// CacheOptions configures NewCache. The zero value is the defaults.
type CacheOptions struct {
	// MaxSubjects bounds how many subjects' answers are kept (least
	// recently used go first). 0: DefaultCacheSubjects; at most
	// MaxCacheSubjects.
	MaxSubjects int
	// MaxLag is how long a lookup waits for the watch stream to reach its
	// read index (or to reconnect) before it refuses with ErrCacheLagging
	// (or ErrCacheDisconnected). 0: DefaultCacheMaxLag; at most a minute.
	MaxLag time.Duration
	// RoundTimeout bounds one read-index round. 0:
	// DefaultCacheRoundTimeout; at most a minute.
	RoundTimeout time.Duration
	// StallTimeout: a stream that brings no message at all for this long
	// (a node sends progress every second even when idle) is dropped and
	// opened again, on the next endpoint. 0: DefaultCacheStallTimeout;
	// 2 s to 10 min.
	StallTimeout time.Duration
	// Purposes, if set, are the only purposes cached (and watched, with
	// "all", which every purpose depends on); lookups of others go to the
	// cluster. At most MaxCachePurposes, each a valid purpose name.
	Purposes []string
	// Watch, if set, is the client the watch stream uses (its endpoints,
	// TLS, token); Checks and read indexes go through the Client given to
	// NewCache.
	Watch *Client
}

// validate fills in the defaults and names the first bad field.
func (o *CacheOptions) validate() error {
	bad := func(field string, format string, args ...any) error {
		return fmt.Errorf("client: CacheOptions.%s: %s", field, fmt.Sprintf(format, args...))
	}
	switch {
	case o.MaxSubjects < 0 || o.MaxSubjects > MaxCacheSubjects:
		return bad("MaxSubjects", "%d, must be 1..%d (0 for %d)", o.MaxSubjects, MaxCacheSubjects, DefaultCacheSubjects)
	case o.MaxLag < 0 || o.MaxLag > maxCacheWait:
		return bad("MaxLag", "%v, must be at most %v (0 for %v)", o.MaxLag, maxCacheWait, DefaultCacheMaxLag)
	case o.RoundTimeout < 0 || o.RoundTimeout > maxCacheWait:
		return bad("RoundTimeout", "%v, must be at most %v (0 for %v)", o.RoundTimeout, maxCacheWait, DefaultCacheRoundTimeout)
	case o.StallTimeout != 0 && (o.StallTimeout < minStallTimeout || o.StallTimeout > maxStallTimeout):
		return bad("StallTimeout", "%v, must be %v..%v (0 for %v)", o.StallTimeout, minStallTimeout, maxStallTimeout, DefaultCacheStallTimeout)
	case len(o.Purposes) > MaxCachePurposes:
		return bad("Purposes", "%d entries, at most %d", len(o.Purposes), MaxCachePurposes)
	}
	for i, p := range o.Purposes {
		if err := optoutd.ValidatePurpose(p); err != nil {
			return bad(fmt.Sprintf("Purposes[%d]", i), "%s", optoutd.ErrorMessage(err))
		}
	}
	o.MaxSubjects = cmp0(o.MaxSubjects, DefaultCacheSubjects)
	o.MaxLag = cmp0(o.MaxLag, DefaultCacheMaxLag)
	o.RoundTimeout = cmp0(o.RoundTimeout, DefaultCacheRoundTimeout)
	o.StallTimeout = cmp0(o.StallTimeout, DefaultCacheStallTimeout)
	return nil
}

func cmp0[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Cache answers Check and Gate from memory, linearizably: see CACHE.md.
// It is safe for concurrent use. Close it when done.
type Cache struct {
	c, watch *Client
	opts     CacheOptions
	follows  map[string]bool // the purposes cached; nil: all
	rounds   *readRounds
	stop     context.CancelFunc
	done     chan struct{} // closed when the stream loop has returned

	mu        sync.Mutex
	entries   *simplelru.LRU[string, subjectEntry]
	pending   map[string]*pendingMisses
	epoch     uint64 // moved by every flush
	catalog   uint64 // the newest catalog version seen
	progress  uint64 // the stream delivered every change up to here
	connected bool   // the current stream delivered a progress
	downSince time.Time
	lastErr   error // why the stream last ended
	fatal     bool  // and a reconnect is unlikely to help
	wake      chan struct{}
	closed    bool
	closeOnce sync.Once

	hits, misses, refusals, uncached, flushes atomic.Uint64
}

var _ Gater = (*Cache)(nil)

// NewCache starts a cache in front of c: it asks for a read index, opens
// the watch stream from it, and returns once the stream is up (or fails if
// it cannot be had before ctx ends). ctx bounds only that start; the
// stream runs until Close.
func NewCache(ctx context.Context, c *Client, opts CacheOptions) (*Cache, error) {
	if c == nil {
		return nil, errors.New("client: NewCache: nil Client")
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	ri, err := c.ReadIndex(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: NewCache: read index: %w", err)
	}
	cc := &Cache{c: c, watch: c, opts: opts, pending: map[string]*pendingMisses{},
		catalog: ri.CatalogVersion, progress: ri.ReadIndex, downSince: time.Now(),
		wake: make(chan struct{}), done: make(chan struct{})}
	if opts.Watch != nil {
		cc.watch = opts.Watch
	}
	if len(opts.Purposes) > 0 {
		cc.follows = map[string]bool{optoutd.AllPurposes: true}
		for _, p := range opts.Purposes {
			cc.follows[p] = true
		}
	}
	cc.entries = newEntries(opts.MaxSubjects)
	bg, stop := context.WithCancel(context.Background())
	cc.stop = stop
	cc.rounds = newReadRounds(bg, opts.RoundTimeout, cc.fetchReadIndex)
	go cc.run(bg, ri.ReadIndex)
	if err := cc.waitConnected(ctx); err != nil {
		cc.Close()
		return nil, fmt.Errorf("client: NewCache: %w", err)
	}
	return cc, nil
}

func newEntries(n int) *simplelru.LRU[string, subjectEntry] {
	l, err := simplelru.NewLRU[string, subjectEntry](n, nil)
	if err != nil {
		panic(err) // n > 0, checked by validate
	}
	return l
}

func (cc *Cache) fetchReadIndex(ctx context.Context) (roundResult, error) {
	r, err := cc.c.ReadIndex(ctx)
	if err != nil {
		return roundResult{}, err
	}
	return roundResult{index: r.ReadIndex, catalog: r.CatalogVersion}, nil
}

// Close stops the watch stream. Lookups then fail with ErrCacheClosed.
// It does not close the clients.
func (cc *Cache) Close() {
	cc.closeOnce.Do(func() {
		cc.mu.Lock()
		cc.closed = true
		cc.wakeLocked()
		cc.mu.Unlock()
		cc.stop()
		<-cc.done
		cc.rounds.close()
	})
}

// CacheStats are counters since NewCache.
type CacheStats struct {
	Hits     uint64 // answered from memory
	Misses   uint64 // answered by a Check through the cluster
	Refusals uint64 // failed closed (an error, Gate denied)
	Uncached uint64 // sent to the cluster as is (a purpose not followed, a receipt)
	Rounds   uint64 // read-index rounds made
	Flushes  uint64 // times everything was dropped (an erasure, a catalog change, a restart)
	Subjects int    // subjects held now
	// Connected and Progress describe the watch stream now.
	Connected bool
	Progress  uint64
}

// Stats returns the counters.
func (cc *Cache) Stats() CacheStats {
	cc.mu.Lock()
	n, connected, progress := cc.entries.Len(), cc.connected, cc.progress
	cc.mu.Unlock()
	return CacheStats{
		Hits: cc.hits.Load(), Misses: cc.misses.Load(), Refusals: cc.refusals.Load(), Uncached: cc.uncached.Load(),
		Rounds: cc.rounds.count.Load(), Flushes: cc.flushes.Load(), Subjects: n, Connected: connected, Progress: progress,
	}
}
