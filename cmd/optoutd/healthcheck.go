package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// The healthcheck subcommand exists because the image is FROM scratch: no
// shell, no curl. Docker Compose's healthcheck and a Kubernetes exec probe
// run `/optoutd healthcheck` inside the container instead.
const (
	defaultHealthURL     = "http://127.0.0.1:7001/readyz"
	defaultHealthTimeout = "2s"
	maxHealthTimeout     = time.Minute
	// healthBodyMax bounds how much of the answer is quoted in the one line.
	healthBodyMax = 200
)

// errUnhealthy marks a check that ran and failed (as opposed to bad flags).
var errUnhealthy = errors.New("unhealthy")

type healthFlags struct {
	url, timeout string
}

// validate turns the flags into a URL and a timeout, or an error that names
// the flag. The timeout is parsed here, not by the flag package, so that a
// bad value is a one-line error with exit status 1 like every other failure.
func (f healthFlags) validate() (*url.URL, time.Duration, error) {
	if strings.TrimSpace(f.url) == "" {
		return nil, 0, errors.New("--url: must be set")
	}
	u, err := url.Parse(f.url)
	if err != nil {
		return nil, 0, fmt.Errorf("--url: %q is not a URL: %w", f.url, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, 0, fmt.Errorf("--url: %q must start with http:// or https://", f.url)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, 0, fmt.Errorf("--url: %q has no host", f.url)
	}
	d, err := time.ParseDuration(f.timeout)
	if err != nil {
		return nil, 0, fmt.Errorf("--timeout: %q is not a duration such as 2s", f.timeout)
	}
	if d <= 0 || d > maxHealthTimeout {
		return nil, 0, fmt.Errorf("--timeout: %v is outside (0, %v]", d, maxHealthTimeout)
	}
	return u, d, nil
}

func newHealthcheckCmd(m *Main) *ffcli.Command {
	fs := flag.NewFlagSet("optoutd healthcheck", flag.ContinueOnError)
	var f healthFlags
	fs.StringVar(&f.url, "url", defaultHealthURL, "URL to GET; /readyz is ready to serve linearizable requests, /healthz is alive")
	fs.StringVar(&f.timeout, "timeout", defaultHealthTimeout, "give up after this long (at most 1m)")
	return &ffcli.Command{
		Name:       "healthcheck",
		ShortUsage: "optoutd healthcheck [--url " + defaultHealthURL + "] [--timeout " + defaultHealthTimeout + "]",
		ShortHelp:  "GET a health URL; exit 0 on HTTP 200, 1 otherwise (for container health checks)",
		LongHelp: "Prints one line saying why. Meant for Docker and Kubernetes health checks of the FROM scratch image, " +
			"which has no shell or curl: [\"CMD\", \"/optoutd\", \"healthcheck\"].",
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			u, timeout, err := f.validate()
			if err != nil {
				return err
			}
			line, err := checkHealth(ctx, u, timeout)
			if err != nil {
				return err
			}
			fmt.Fprintln(m.Stdout, line)
			return nil
		},
	}
}

// checkHealth GETs u once. It returns the line to print on HTTP 200, and an
// error wrapping errUnhealthy, worded as one line, otherwise.
func checkHealth(ctx context.Context, u *url.URL, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{
		// Ask the node itself: never a proxy from the environment, never a
		// redirect, never a pooled connection.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("--url: %w", err)
	}
	req.Header.Set("User-Agent", "optoutd-healthcheck")
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%w: GET %s: no answer within %v", errUnhealthy, u, timeout)
		}
		return "", fmt.Errorf("%w: GET %s: %s", errUnhealthy, u, oneLine(errors.Unwrap(err), err))
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, healthBodyMax+1))
	said := quoteBody(body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: GET %s: %s%s", errUnhealthy, u, resp.Status, said)
	}
	return fmt.Sprintf("healthy: GET %s: %s%s", u, resp.Status, said), nil
}

// oneLine prefers the inner error of a *url.Error (which repeats the URL)
// and flattens it to one line.
func oneLine(inner, outer error) string {
	e := outer
	if inner != nil {
		e = inner
	}
	return strings.Join(strings.Fields(e.Error()), " ")
}

// quoteBody renders the start of a response body as ": text", on one line.
func quoteBody(b []byte) string {
	cut := len(b) > healthBodyMax
	if cut {
		b = b[:healthBodyMax]
	}
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	if s == "" {
		return ""
	}
	if cut {
		s += "..."
	}
	return ": " + s
}
