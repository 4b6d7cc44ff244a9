package command_test

import (
	"testing"

	"github.com/optoutd/optoutd"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestEnumNumbering: every domain enum that the log stores is numbered as
// the log's, so the plain conversions of build.go and convert.go are right,
// and every value of those log enums has its domain value.
func TestEnumNumbering(t *testing.T) {
	pairs := []struct {
		domain int
		log    protoreflect.Enum
	}{
		{int(optoutd.StateUnspecified), fsmv1.State_STATE_UNSPECIFIED},
		{int(optoutd.StateOptedOut), fsmv1.State_STATE_OPTED_OUT},
		{int(optoutd.StateOptedIn), fsmv1.State_STATE_OPTED_IN},
		{int(optoutd.DefaultUnspecified), fsmv1.DefaultDecision_DEFAULT_DECISION_UNSPECIFIED},
		{int(optoutd.DefaultAllow), fsmv1.DefaultDecision_DEFAULT_DECISION_ALLOW},
		{int(optoutd.DefaultDeny), fsmv1.DefaultDecision_DEFAULT_DECISION_DENY},
		{int(optoutd.AuditUnspecified), fsmv1.AuditKind_AUDIT_KIND_UNSPECIFIED},
		{int(optoutd.AuditSet), fsmv1.AuditKind_AUDIT_KIND_SET},
		{int(optoutd.AuditErase), fsmv1.AuditKind_AUDIT_KIND_ERASE},
		{int(optoutd.AuditOverrideCreated), fsmv1.AuditKind_AUDIT_KIND_OVERRIDE_CREATED},
		{int(optoutd.AuditOverrideRevoked), fsmv1.AuditKind_AUDIT_KIND_OVERRIDE_REVOKED},
		{int(optoutd.AuditOverrideExpired), fsmv1.AuditKind_AUDIT_KIND_OVERRIDE_EXPIRED},
		{int(optoutd.OverrideEffectUnspecified), fsmv1.OverrideEffect_OVERRIDE_EFFECT_UNSPECIFIED},
		{int(optoutd.OverrideAllow), fsmv1.OverrideEffect_OVERRIDE_EFFECT_ALLOW},
		{int(optoutd.OverrideDeny), fsmv1.OverrideEffect_OVERRIDE_EFFECT_DENY},
		{int(optoutd.OverrideStateUnspecified), fsmv1.OverrideState_OVERRIDE_STATE_UNSPECIFIED},
		{int(optoutd.OverrideActive), fsmv1.OverrideState_OVERRIDE_STATE_ACTIVE},
		{int(optoutd.OverrideRevoked), fsmv1.OverrideState_OVERRIDE_STATE_REVOKED},
		{int(optoutd.OverrideExpired), fsmv1.OverrideState_OVERRIDE_STATE_EXPIRED},
		{int(optoutd.RoleNone), fsmv1.Role_ROLE_UNSPECIFIED},
		{int(optoutd.RoleReader), fsmv1.Role_ROLE_READER},
		{int(optoutd.RoleWriter), fsmv1.Role_ROLE_WRITER},
		{int(optoutd.RoleAuditor), fsmv1.Role_ROLE_AUDITOR},
		{int(optoutd.RoleAdmin), fsmv1.Role_ROLE_ADMIN},
		{int(optoutd.PrincipalUnspecified), fsmv1.PrincipalKind_PRINCIPAL_KIND_UNSPECIFIED},
		{int(optoutd.PrincipalToken), fsmv1.PrincipalKind_PRINCIPAL_KIND_TOKEN},
		{int(optoutd.PrincipalCertificate), fsmv1.PrincipalKind_PRINCIPAL_KIND_CERTIFICATE},
	}
	listed := map[protoreflect.FullName]map[protoreflect.EnumNumber]bool{}
	enums := map[protoreflect.FullName]protoreflect.EnumDescriptor{}
	for _, p := range pairs {
		d := p.log.Descriptor()
		if int(p.log.Number()) != p.domain {
			t.Errorf("%s is %d, its domain value %d", d.Values().ByNumber(p.log.Number()).Name(), p.log.Number(), p.domain)
		}
		if listed[d.FullName()] == nil {
			listed[d.FullName()] = map[protoreflect.EnumNumber]bool{}
		}
		listed[d.FullName()][p.log.Number()] = true
		enums[d.FullName()] = d
	}
	for name, d := range enums {
		for i := 0; i < d.Values().Len(); i++ {
			if v := d.Values().Get(i); !listed[name][v.Number()] {
				t.Errorf("%s has no domain value", v.FullName())
			}
		}
	}
}
