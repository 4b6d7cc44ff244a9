package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestDebugServer: --debug-addr serves the profiling index and the
// command line of this process, and refuses an address that is not
// host:port by naming the flag.
func TestDebugServer(t *testing.T) {
	if _, err := startDebugServer("nope", slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--debug-addr") {
		t.Fatalf("startDebugServer(nope) = %v, want an error naming --debug-addr", err)
	}
	d, err := startDebugServer("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	for path, want := range map[string]string{"/debug/pprof/": "goroutine", "/debug/pprof/cmdline": "optoutd"} {
		resp, err := http.Get("http://" + d.addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body without %q: %.200s", path, resp.StatusCode, want, b)
		}
	}
}
