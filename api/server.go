package api

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxRequestBytes caps a request message (after decompression).
const MaxRequestBytes = 1 << 20

// Options configures the handler.
type Options struct {
	Logger *slog.Logger
	// Gatherer, if set, is served on /metrics.
	Gatherer prometheus.Gatherer
	// Registerer, if set, receives the request and decision metrics.
	Registerer prometheus.Registerer
	// Members, if set, serves ClusterService's membership calls.
	Members Membership
	// Backups, if set, serves AdminService.Snapshot (online backups).
	Backups Backuper
	// Principals, if set, authenticates bearer tokens and client
	// certificates and serves the principal admin calls.
	Principals Principals
	// RequireAuth refuses every call without valid credentials.
	RequireAuth bool
	// NodeID names the answering node in the receipts it signs.
	NodeID string
}

// NewHandler returns the whole API: both services, gRPC health, gRPC
// reflection, /healthz, /readyz and /metrics.
func NewHandler(store Store, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	am := newAPIMetrics(opts.Registerer)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(newOverrideCollector(store))
	}
	hopts := append(jsonCodecs(),
		connect.WithReadMaxBytes(MaxRequestBytes),
		// Most responses are a few hundred bytes, where gzip costs CPU and
		// saves nothing; stream chunks and large pages still compress.
		connect.WithCompressMinBytes(4096),
		connect.WithInterceptors(metricsInterceptor{am}, newLogInterceptor(opts.Logger), authInterceptor{principals: opts.Principals, required: opts.RequireAuth}, schemaInterceptor{}),
	)
	mux := http.NewServeMux()
	rc := &receipts{store: store, nodeID: opts.NodeID}
	mux.Handle(optoutv1connect.NewOptOutServiceHandler(&optOutServer{store: store, metrics: am, receipts: rc}, hopts...))
	mux.Handle(optoutv1connect.NewEnforcementServiceHandler(&enforcementServer{store: store, receipts: rc, fence: newFenceCounts(opts.Registerer)}, hopts...))
	mux.Handle(optoutv1connect.NewClusterServiceHandler(&clusterServer{store: store, members: opts.Members}, hopts...))
	mux.Handle(optoutv1connect.NewCatalogServiceHandler(&catalogServer{store: store}, hopts...))
	mux.Handle(optoutv1connect.NewAuditServiceHandler(&auditServer{store: store}, hopts...))
	mux.Handle(optoutv1connect.NewAdminServiceHandler(withBackups(&adminServer{store: store, principals: opts.Principals}, opts.Backups), hopts...))
	mux.Handle(grpchealth.NewHandler(&healthChecker{store: store}))
	reflector := grpcreflect.NewStaticReflector(
		optoutv1connect.OptOutServiceName,
		optoutv1connect.ClusterServiceName,
		optoutv1connect.CatalogServiceName,
		optoutv1connect.AuditServiceName,
		optoutv1connect.AdminServiceName,
		optoutv1connect.EnforcementServiceName,
		grpchealth.HealthV1ServiceName,
	)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := store.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	return withTLSState(withRequestErrors(withLeaderHint(store, mux)))
}

// NewServer wraps h in an http.Server that speaks HTTP/1.1 and h2c, so
// gRPC works without TLS. Run it with Serve.
func NewServer(addr string, h http.Handler) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true) // over TLS, by ALPN
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		Protocols:         &p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// Serve runs srv (from NewServer) on ln, over TLS when srv.TLSConfig is
// set. Unlike srv.Serve, it does not close a connection that has not sent
// its first request yet before the idle timeout: see listener.go.
func Serve(srv *http.Server, ln net.Listener) error {
	idle := srv.IdleTimeout
	if idle == 0 {
		idle = srv.ReadTimeout
	}
	gl := graceListener{Listener: ln, idle: idle}
	if srv.TLSConfig != nil {
		return srv.ServeTLS(gl, "", "")
	}
	return srv.Serve(gl)
}

// healthChecker reports SERVING for the whole server and OptOutService only
// when the node can serve linearizable requests; ClusterService answers
// from local state and is always SERVING.
type healthChecker struct{ store Store }

func (h *healthChecker) Check(_ context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	switch req.Service {
	case "", optoutv1connect.OptOutServiceName:
		status := grpchealth.StatusServing
		if h.store.Ready() != nil {
			status = grpchealth.StatusNotServing
		}
		return &grpchealth.CheckResponse{Status: status}, nil
	case optoutv1connect.CatalogServiceName, optoutv1connect.AuditServiceName, optoutv1connect.AdminServiceName,
		optoutv1connect.EnforcementServiceName:
		status := grpchealth.StatusServing
		if h.store.Ready() != nil {
			status = grpchealth.StatusNotServing
		}
		return &grpchealth.CheckResponse{Status: status}, nil
	case optoutv1connect.ClusterServiceName:
		return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
	default:
		return nil, connect.NewError(connect.CodeNotFound, nil)
	}
}
