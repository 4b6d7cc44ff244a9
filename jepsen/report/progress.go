package report

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/optoutd/optoutd/jepsen/history"
	"golang.org/x/term"
)

// Progress prints elapsed time, operations and the current fault while a
// run goes: one refreshing line on a terminal, a plain line every
// PlainEvery otherwise (logs, CI).
type Progress struct {
	W     io.Writer
	TTY   bool
	Label string
	Total time.Duration
	Rec   *history.Recorder
	Fault func() string
	// PlainEvery is the period of plain lines (default 10 s).
	PlainEvery time.Duration

	mu     sync.Mutex
	seen   int
	ok     int
	failed int
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Line renders the current state.
func (p *Progress) Line() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, op := range p.Rec.Since(p.seen) {
		switch op.Outcome {
		case history.OK, history.NotFound, history.Mismatch:
			p.ok++
		default:
			p.failed++
		}
		p.seen++
	}
	fault := "none"
	if p.Fault != nil {
		fault = p.Fault()
	}
	el := time.Duration(p.Rec.Now()).Truncate(time.Second)
	return fmt.Sprintf("[%s] %v/%v ops=%d ok=%d err=%d fault=%s", p.Label, el, p.Total, p.seen, p.ok, p.failed, fault)
}

// Run prints until ctx ends, then ends a terminal line with a newline.
func (p *Progress) Run(ctx context.Context) {
	every := p.PlainEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	if p.TTY {
		every = 500 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if p.TTY {
				fmt.Fprintf(p.W, "\r\033[K%s\n", p.Line())
			}
			return
		case <-t.C:
			if p.TTY {
				fmt.Fprintf(p.W, "\r\033[K%s", p.Line())
			} else {
				fmt.Fprintln(p.W, p.Line())
			}
		}
	}
}
