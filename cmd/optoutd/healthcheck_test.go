package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer answers every request with status and body, and counts
// the requests.
func countingServer(t *testing.T, status int, body string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.Method != http.MethodGet {
			http.Error(w, "want GET, got "+r.Method, http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// closedURL returns a URL on a loopback port that nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/readyz"
}

// runHealthcheck runs `optoutd healthcheck args...` in-process.
func runHealthcheck(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	m := NewMain(&out, &errb)
	if err := m.ParseFlags(append([]string{"healthcheck"}, args...)); err != nil {
		return out.String(), err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = m.Run(ctx)
	return out.String(), err
}

// TestHealthcheckBadFlags: every bad value fails with an error naming the
// flag, before any request is made.
func TestHealthcheckBadFlags(t *testing.T) {
	srv, hits := countingServer(t, http.StatusOK, "ready\n")
	good := srv.URL + "/readyz"
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"empty url", []string{"--url", ""}, "--url: must be set"},
		{"blank url", []string{"--url", "  "}, "--url: must be set"},
		{"url without scheme", []string{"--url", "127.0.0.1:7001/readyz"}, "--url"},
		{"host:port is not a url", []string{"--url", "localhost:7001"}, "--url"},
		{"ftp url", []string{"--url", "ftp://127.0.0.1/readyz"}, "--url"},
		{"url without host", []string{"--url", "http:///readyz"}, "--url"},
		{"url with only a port", []string{"--url", "http://:7001/readyz"}, "--url"},
		{"unparsable url", []string{"--url", "http://[::1/readyz"}, "--url"},
		{"timeout not a duration", []string{"--url", good, "--timeout", "soon"}, "--timeout"},
		{"timeout without unit", []string{"--url", good, "--timeout", "2"}, "--timeout"},
		{"zero timeout", []string{"--url", good, "--timeout", "0s"}, "--timeout"},
		{"negative timeout", []string{"--url", good, "--timeout", "-1s"}, "--timeout"},
		{"timeout above a minute", []string{"--url", good, "--timeout", "2m"}, "--timeout"},
		{"stray argument", []string{"--url", good, "extra"}, "unexpected arguments"},
		{"unknown flag", []string{"--interval", "1s"}, "interval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHealthcheck(t, tc.args...)
			if err == nil {
				t.Fatalf("%v: succeeded (stdout %q)", tc.args, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v: error %q does not name %q", tc.args, err, tc.want)
			}
			if errors.Is(err, errUnhealthy) {
				t.Fatalf("%v: a flag error reported as a failed check: %v", tc.args, err)
			}
			if out != "" {
				t.Fatalf("%v: printed %q on stdout", tc.args, out)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("bad flags made %d requests", n)
	}
}

// TestHealthcheckAgainstServer: 200 is healthy; 503, 404, a redirect and a
// closed port are not, and each says why in one line.
func TestHealthcheckAgainstServer(t *testing.T) {
	ok, okHits := countingServer(t, http.StatusOK, "ready\n")
	notReady, _ := countingServer(t, http.StatusServiceUnavailable, "not ready: no leader known\n")
	missing, _ := countingServer(t, http.StatusNotFound, "404 page not found\n")
	moved, _ := countingServer(t, http.StatusFound, "")
	long, _ := countingServer(t, http.StatusServiceUnavailable, strings.Repeat("x", 5000)+"\nsecond line")
	cases := []struct {
		name    string
		url     string
		healthy bool
		want    []string
	}{
		{"200", ok.URL + "/readyz", true, []string{"healthy", "200 OK", "ready"}},
		{"503", notReady.URL + "/readyz", false, []string{"unhealthy", "503", "no leader known"}},
		{"404", missing.URL + "/nope", false, []string{"unhealthy", "404"}},
		{"redirect is not followed", moved.URL + "/readyz", false, []string{"unhealthy", "302"}},
		{"long body is cut", long.URL + "/readyz", false, []string{"unhealthy", "503", "xxx..."}},
		{"unreachable", closedURL(t), false, []string{"unhealthy", "connection refused"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHealthcheck(t, "--url", tc.url, "--timeout", "10s")
			line := out
			if tc.healthy {
				if err != nil {
					t.Fatalf("%s: %v", tc.url, err)
				}
			} else {
				if err == nil {
					t.Fatalf("%s: reported healthy: %q", tc.url, out)
				}
				if !errors.Is(err, errUnhealthy) {
					t.Fatalf("%s: error %v is not errUnhealthy", tc.url, err)
				}
				if out != "" {
					t.Fatalf("%s: printed %q on stdout", tc.url, out)
				}
				line = err.Error() + "\n"
			}
			if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
				t.Fatalf("%s: want exactly one line, got %q", tc.url, line)
			}
			if len(line) > 400 {
				t.Fatalf("%s: line of %d bytes", tc.url, len(line))
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Fatalf("%s: %q lacks %q", tc.url, line, w)
				}
			}
		})
	}
	if n := okHits.Load(); n != 1 {
		t.Fatalf("the healthy server saw %d requests, want 1", n)
	}
}

// TestHealthcheckTimeout: a server that never answers is unhealthy once the
// timeout passes, and the line says so.
func TestHealthcheckTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	_, err := runHealthcheck(t, "--url", srv.URL+"/readyz", "--timeout", "50ms")
	if err == nil || !errors.Is(err, errUnhealthy) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("hanging server: %v", err)
	}
}

// TestHealthcheckFromEnvironment: OPTOUT_URL and OPTOUT_TIMEOUT set the
// flags, like every other optoutd flag.
func TestHealthcheckFromEnvironment(t *testing.T) {
	srv, hits := countingServer(t, http.StatusOK, "ready\n")
	t.Setenv("OPTOUT_URL", srv.URL+"/readyz")
	t.Setenv("OPTOUT_TIMEOUT", "5s")
	if _, err := runHealthcheck(t); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 {
		t.Fatalf("OPTOUT_URL was not used: %d requests", hits.Load())
	}
	t.Setenv("OPTOUT_TIMEOUT", "0s")
	if _, err := runHealthcheck(t); err == nil || !strings.Contains(err.Error(), "--timeout") {
		t.Fatalf("OPTOUT_TIMEOUT=0s: %v", err)
	}
}

// TestHealthcheckExitStatus runs the real binary, as Docker and Kubernetes
// do: exit 0 and one line on stdout when healthy; exit 1 and one line on
// stderr otherwise, bad values included.
func TestHealthcheckExitStatus(t *testing.T) {
	bin := binary(t)
	ok, _ := countingServer(t, http.StatusOK, "ready\n")
	notReady, _ := countingServer(t, http.StatusServiceUnavailable, "not ready: no leader known\n")
	cases := []struct {
		name, url, timeout string
		code               int
		want               string
	}{
		{"200", ok.URL + "/readyz", "5s", 0, "healthy: GET " + ok.URL + "/readyz: 200 OK: ready"},
		{"503", notReady.URL + "/readyz", "5s", 1, "optoutd: unhealthy: GET " + notReady.URL + "/readyz: 503 Service Unavailable: not ready: no leader known"},
		{"unreachable", closedURL(t), "5s", 1, "connection refused"},
		{"bad timeout", ok.URL + "/readyz", "soon", 1, "optoutd: --timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "healthcheck", "--url", tc.url, "--timeout", tc.timeout)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", code, tc.code, out.String(), errb.String())
			}
			said, quiet := out.String(), errb.String()
			if tc.code != 0 {
				said, quiet = quiet, said
			}
			if quiet != "" {
				t.Fatalf("unexpected output on the other stream: %q", quiet)
			}
			if strings.Count(said, "\n") != 1 || !strings.Contains(said, tc.want) {
				t.Fatalf("want one line containing %q, got %q", tc.want, said)
			}
		})
	}
}
