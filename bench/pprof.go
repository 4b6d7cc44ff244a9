package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// profiler is a system whose nodes serve Go's profiling endpoints.
type profiler interface {
	DebugAddrs() []string
}

// profileCell starts CPU profiles of every node of sys for the measured
// part of a cell (after warmup, for the cell's duration) and returns a
// wait function that saves them under dir as <label>-<node>.pprof. It does
// nothing when dir is empty or sys has no debug addresses.
func profileCell(ctx context.Context, dir string, sys System, label string, warmup, dur time.Duration) func() error {
	p, ok := sys.(profiler)
	if dir == "" || !ok || len(p.DebugAddrs()) == 0 {
		return func() error { return nil }
	}
	secs := max(1, int(dur.Round(time.Second)/time.Second))
	var wg sync.WaitGroup
	errs := make([]error, len(p.DebugAddrs()))
	for i, addr := range p.DebugAddrs() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := filepath.Join(dir, fmt.Sprintf("%s-%s.pprof", fileLabel(label), sys.NodeName(i)))
			errs[i] = fetchProfile(ctx, addr, secs, warmup, path)
		}()
	}
	return func() error {
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
}

func fetchProfile(ctx context.Context, addr string, secs int, after time.Duration, path string) error {
	select {
	case <-time.After(after):
	case <-ctx.Done():
		return ctx.Err()
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: GET %s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("pprof: %s: %w", path, err)
	}
	return f.Close()
}

// fileLabel turns a cell label ("check zipf ×16") into a file name part.
func fileLabel(s string) string {
	return strings.NewReplacer(" ×", "-c", " ", "-", "/", "-").Replace(s)
}
