package api_test

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/optoutd/optoutd/api"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestGRPCHealth: the server and OptOutService are NOT_SERVING until the
// store is ready; ClusterService always answers.
func TestGRPCHealth(t *testing.T) {
	var ready atomic.Bool
	store := memStore()
	store.ReadyFn = func() error {
		if !ready.Load() {
			return errors.New("no leader known")
		}
		return nil
	}
	s := serve(t, store, api.Options{})
	for _, p := range []protocol{protocols()[2], protocols()[3], protocols()[0]} { // gRPC, gRPC-Web, Connect
		t.Run(p.name, func(t *testing.T) {
			ready.Store(false)
			hc := grpchealth.NewClient(p.httpClient(t), s.URL, p.opts...)
			status := func(service string) grpchealth.Status {
				t.Helper()
				r, err := hc.Check(ctx(t), &grpchealth.CheckRequest{Service: service})
				if err != nil {
					t.Fatalf("health of %q: %v", service, err)
				}
				return r.Status
			}
			for _, svc := range []string{"", optoutv1connect.OptOutServiceName, optoutv1connect.CatalogServiceName, optoutv1connect.AuditServiceName, optoutv1connect.AdminServiceName} {
				if got := status(svc); got != grpchealth.StatusNotServing {
					t.Errorf("not ready: %q is %v, want NOT_SERVING", svc, got)
				}
			}
			if got := status(optoutv1connect.ClusterServiceName); got != grpchealth.StatusServing {
				t.Errorf("not ready: ClusterService is %v, want SERVING", got)
			}
			ready.Store(true)
			for _, svc := range []string{"", optoutv1connect.OptOutServiceName, optoutv1connect.ClusterServiceName} {
				if got := status(svc); got != grpchealth.StatusServing {
					t.Errorf("ready: %q is %v, want SERVING", svc, got)
				}
			}
			_, err := hc.Check(ctx(t), &grpchealth.CheckRequest{Service: "no.such.Service"})
			if connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("unknown service: %v, want not_found", err)
			}
		})
	}
	if store.calls() != 0 {
		t.Errorf("health checks made %d store calls", store.calls())
	}
}

// TestGRPCReflection lists the services, as grpcurl does, and finds the
// methods of OptOutService.
func TestGRPCReflection(t *testing.T) {
	s := serve(t, memStore(), api.Options{})
	for _, opts := range [][]connect.ClientOption{{connect.WithGRPC()}, nil} {
		rc := grpcreflect.NewClient(h2cClient(t), s.URL, opts...)
		stream := rc.NewStream(ctx(t))
		names, err := stream.ListServices()
		if err != nil {
			t.Fatalf("ListServices: %v", err)
		}
		for _, want := range []protoreflect.FullName{optoutv1connect.OptOutServiceName, optoutv1connect.ClusterServiceName,
			optoutv1connect.CatalogServiceName, optoutv1connect.AuditServiceName, optoutv1connect.AdminServiceName, grpchealth.HealthV1ServiceName} {
			if !slices.Contains(names, want) {
				t.Errorf("ListServices = %v, missing %s", names, want)
			}
		}
		files, err := stream.FileContainingSymbol(optoutv1connect.OptOutServiceName)
		if err != nil {
			t.Fatalf("FileContainingSymbol: %v", err)
		}
		var methods []string
		for _, f := range files {
			for _, svc := range f.GetService() {
				if f.GetPackage()+"."+svc.GetName() == optoutv1connect.OptOutServiceName {
					for _, m := range svc.GetMethod() {
						methods = append(methods, m.GetName())
					}
				}
			}
		}
		for _, want := range []string{"Set", "Check", "CheckBatch", "Get"} {
			if !slices.Contains(methods, want) {
				t.Errorf("OptOutService methods %v, missing %s", methods, want)
			}
		}
		if _, err := stream.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}
