package api

import (
	"testing"

	"github.com/optoutd/optoutd"
	_ "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// TestEveryServedProcedureHasRoles: a procedure missing from the access
// table is refused to every principal once authentication is required
// (ReadIndex was, until it was added). Every method of every service
// NewHandler serves must name its roles; admin may call everything.
func TestEveryServedProcedureHasRoles(t *testing.T) {
	served := []string{
		optoutv1connect.OptOutServiceName, optoutv1connect.ClusterServiceName, optoutv1connect.CatalogServiceName,
		optoutv1connect.AuditServiceName, optoutv1connect.AdminServiceName,
	}
	n := 0
	for _, name := range served {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		sd := d.(protoreflect.ServiceDescriptor)
		for i := range sd.Methods().Len() {
			p := "/" + name + "/" + string(sd.Methods().Get(i).Name())
			n++
			if !allowed(p, optoutd.RoleAdmin) {
				t.Errorf("%s is not in the access table", p)
			}
		}
	}
	if !allowed(optoutv1connect.OptOutServiceReadIndexProcedure, optoutd.RoleReader) {
		t.Error("a reader may Check but not ReadIndex")
	}
	if n < 20 {
		t.Fatalf("only %d methods found: is the descriptor walk stale?", n)
	}
}
