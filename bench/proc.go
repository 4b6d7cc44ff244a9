package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one node's OS process. It can be killed with SIGKILL and
// started again with the same arguments (same ports, same data dir).
type proc struct {
	name    string
	bin     string
	args    []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// peak is the highest VmHWM (peak resident set) seen over every
	// lifetime of the node, in bytes.
	peak int64
}

// samplePeak reads the running process's VmHWM into peak.
func (p *proc) samplePeak() {
	if id := p.pid(); id != 0 {
		if v, ok := readVmHWM(id); ok {
			p.mu.Lock()
			p.peak = max(p.peak, v)
			p.mu.Unlock()
		}
	}
}

// peakRSS is the peak resident set over the node's lifetimes so far.
func (p *proc) peakRSS() int64 {
	p.samplePeak()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// readVmHWM is a process's peak resident set size from /proc, in bytes.
func readVmHWM(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	return parseVmHWM(string(b))
}

func parseVmHWM(status string) (int64, bool) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				return 0, false
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			return n << 10, err == nil
		}
	}
	return 0, false
}

// start runs the process in its own process group, so a Ctrl-C on the
// terminal reaches only the bench (which then kills its children), and asks
// the kernel to SIGKILL it if the bench dies first.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s: already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	if v, ok := readVmHWM(cmd.Process.Pid); ok { // its last chance
		p.mu.Lock()
		p.peak = max(p.peak, v)
		p.mu.Unlock()
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// exited reports whether a started process has died on its own.
func (p *proc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// pid is the running process's id, or 0.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// logTail returns the last n bytes of the process's log, for errors.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// freePorts reserves n loopback ports by listening and closing.
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	var out []string
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// waitHTTP200 polls url until it answers 200, the process dies, or ctx ends.
func waitHTTP200(ctx context.Context, p *proc, url string) error {
	hc := &http.Client{Timeout: time.Second}
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("%s exited while starting; log tail:\n%s", p.name, p.logTail(2000))
		}
		resp, err := hc.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last: %w); log tail:\n%s", p.name, ctx.Err(), last, p.logTail(2000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// retry calls fn until it succeeds or ctx ends, pausing briefly between
// attempts.
func retry(ctx context.Context, fn func(context.Context) error) error {
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := fn(cctx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func joinInitial(names, addrs []string, scheme string) string {
	var parts []string
	for i := range names {
		parts = append(parts, names[i]+"="+scheme+addrs[i])
	}
	return strings.Join(parts, ",")
}
