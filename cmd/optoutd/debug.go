package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// debugServer serves Go's profiling endpoints (/debug/pprof/...) on their
// own listener, off unless --debug-addr is set. They have no
// authentication and expose goroutine stacks and heap contents, which is
// why they are not on the API port; bind the address to loopback.
type debugServer struct {
	srv *http.Server
	ln  net.Listener
}

func startDebugServer(addr string, log *slog.Logger) (*debugServer, error) {
	if err := checkListenAddr("--debug-addr", addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	d := &debugServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug server stopped", "err", err)
		}
	}()
	log.Warn("profiling endpoints are served without authentication", "debug_addr", ln.Addr().String())
	return d, nil
}

func (d *debugServer) addr() string { return d.ln.Addr().String() }

func (d *debugServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = d.srv.Shutdown(ctx)
}
