package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// progress shows what runs now. On a terminal it rewrites one line twice a
// second; otherwise it prints a plain line at each step and every 5 s.
type progress struct {
	w   io.Writer
	tty bool

	mu      sync.Mutex
	prefix  string // "[round 2/5 etcd]"
	label   string // "writes"
	total   time.Duration
	started time.Time
	counter *atomic.Int64
	lastN   int64
	lastT   time.Time
	dirty   bool // a terminal line is showing

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newProgress(f *os.File) *progress {
	p := &progress{w: f, tty: isTerminal(f) && os.Getenv("TERM") != "dumb", stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.done)
	every := 5 * time.Second
	if p.tty {
		every = 500 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.tick()
		}
	}
}

func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.label == "" {
		return
	}
	now := time.Now()
	line := fmt.Sprintf("%s %s %4.1fs", p.prefix, p.label, now.Sub(p.started).Seconds())
	if p.total > 0 {
		line += fmt.Sprintf("/%v", p.total)
	}
	if p.counter != nil {
		n := p.counter.Load()
		if dt := now.Sub(p.lastT).Seconds(); dt > 0 {
			line += fmt.Sprintf("  %8.0f ops/s", float64(n-p.lastN)/dt)
		}
		p.lastN, p.lastT = n, now
	}
	p.print(line)
}

// print writes a transient line on a terminal, a plain line otherwise.
// Callers hold mu.
func (p *progress) print(line string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.dirty = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// step starts a new step; counter (optional) counts completed operations.
func (p *progress) step(prefix, label string, total time.Duration, counter *atomic.Int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prefix, p.label, p.total, p.counter = prefix, label, total, counter
	p.started, p.lastT, p.lastN = time.Now(), time.Now(), 0
	if counter != nil {
		p.lastN = counter.Load()
	}
	p.print(fmt.Sprintf("%s %s ...", prefix, label))
}

// logf prints a permanent line (a finished step's result).
func (p *progress) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dirty {
		fmt.Fprint(p.w, "\r\033[K")
		p.dirty = false
	}
	fmt.Fprintf(p.w, format+"\n", args...)
	p.label = ""
}

// close stops the ticker and clears a transient line; it is idempotent.
func (p *progress) close() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dirty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
