package workload

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Event is one message a producer put on the queue: an event about a
// subject for a purpose, with the receipt the producer's Gate gave it (or
// a false or forged one; see the history Role constants).
type Event struct {
	ID           int
	Role         string
	Service      string // the consumer it is addressed to
	Subject      string
	Purpose      string
	Receipt      string
	ReceiptIndex uint64
}

// Delivery is one delivery of an event; N counts from 1.
type Delivery struct {
	Event *Event
	N     int
	due   time.Time
}

// QueueConfig shapes how badly the queue behaves.
type QueueConfig struct {
	// Most deliveries wait uniformly up to ShortMax; LongFrac of them wait
	// from LongMin to LongMax instead (a consumer that was slow, a
	// partition of the broker).
	ShortMax         time.Duration
	LongFrac         float64
	LongMin, LongMax time.Duration
	// DupFrac of events are delivered twice, TripleFrac three times
	// (at-least-once delivery); every copy has its own delay.
	DupFrac, TripleFrac float64
	// RedeliverMax is how many times a delivery whose consumer failed
	// (Nack) comes back before the queue gives up on it.
	RedeliverMax int
}

// DefaultQueue delays most events up to 400 ms, one in eight by 1.5–5 s,
// and delivers a third of them more than once.
func DefaultQueue() QueueConfig {
	return QueueConfig{ShortMax: 400 * time.Millisecond, LongFrac: 0.12, LongMin: 1500 * time.Millisecond,
		LongMax: 5 * time.Second, DupFrac: 0.25, TripleFrac: 0.08, RedeliverMax: 20}
}

// QueueStats counts what the queue did.
type QueueStats struct {
	Events      int `json:"events"`
	Deliveries  int `json:"deliveries"`
	Duplicates  int `json:"duplicate_deliveries"`
	LongWaits   int `json:"long_waits"`
	Redelivered int `json:"redelivered_after_failure"`
	GaveUp      int `json:"gave_up"`
	Undelivered int `json:"undelivered_at_end"`
}

// Queue is an in-process queue of one consumer service that delays and
// redelivers. Take blocks until a delivery is due.
type Queue struct {
	cfg QueueConfig

	mu      sync.Mutex
	rng     *rand.Rand
	items   dueHeap
	changed chan struct{} // closed and replaced on every Put (a broadcast)
	closed  bool
	stats   QueueStats
}

// NewQueue returns an empty queue drawing its delays from seed.
func NewQueue(cfg QueueConfig, seed uint64) *Queue {
	return &Queue{cfg: cfg, rng: rand.New(rand.NewPCG(seed, 0x9e3779b9)), changed: make(chan struct{})}
}

func (q *Queue) delay() time.Duration {
	if q.rng.Float64() < q.cfg.LongFrac {
		q.stats.LongWaits++
		return q.cfg.LongMin + time.Duration(q.rng.Int64N(int64(q.cfg.LongMax-q.cfg.LongMin)+1))
	}
	return time.Duration(q.rng.Int64N(int64(q.cfg.ShortMax) + 1))
}

// Put enqueues ev: one, two or three deliveries, each with its own delay.
func (q *Queue) Put(ev *Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	copies := 1
	if r := q.rng.Float64(); r < q.cfg.TripleFrac {
		copies = 3
	} else if r < q.cfg.TripleFrac+q.cfg.DupFrac {
		copies = 2
	}
	q.stats.Events++
	q.stats.Duplicates += copies - 1
	now := time.Now()
	for i := range copies {
		heap.Push(&q.items, &Delivery{Event: ev, N: i + 1, due: now.Add(q.delay())})
	}
	q.wakeLocked()
}

// Nack returns a delivery whose processing failed (a fence that failed
// closed); it comes back after a short wait, up to RedeliverMax times. It
// reports whether it will.
func (q *Queue) Nack(d *Delivery) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	if d.N > q.cfg.RedeliverMax {
		q.stats.GaveUp++
		return false
	}
	q.stats.Redelivered++
	heap.Push(&q.items, &Delivery{Event: d.Event, N: d.N + 1, due: time.Now().Add(200*time.Millisecond + q.delay()/2)})
	q.wakeLocked()
	return true
}

func (q *Queue) wakeLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// Take returns the next due delivery, or false once ctx ends or the queue
// is closed.
func (q *Queue) Take(ctx context.Context) (*Delivery, bool) {
	for {
		if ctx.Err() != nil {
			return nil, false
		}
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, false
		}
		wait := time.Hour
		if len(q.items) > 0 {
			if wait = time.Until(q.items[0].due); wait <= 0 {
				d := heap.Pop(&q.items).(*Delivery)
				q.stats.Deliveries++
				q.mu.Unlock()
				return d, true
			}
		}
		changed := q.changed
		q.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// Close ends every Take; what is still queued is counted as undelivered.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	q.stats.Undelivered = len(q.items)
	q.items = nil
	q.wakeLocked()
}

// Stats returns the queue's counts.
func (q *Queue) Stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stats
}

// dueHeap orders deliveries by due time.
type dueHeap []*Delivery

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(*Delivery)) }
func (h *dueHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}
