package api_test

import (
	"testing"

	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// enumPair is one domain value and the API value it converts to.
type enumPair struct {
	domain int
	wire   protoreflect.Enum
}

// TestEnumNumbering: every domain enum is numbered as the API's, so the
// plain conversions of convert.go (and optoutctl's role) are right, and
// every value of those API enums has its domain value.
func TestEnumNumbering(t *testing.T) {
	pairs := []enumPair{
		{int(optoutd.StateUnspecified), optoutv1.State_STATE_UNSPECIFIED},
		{int(optoutd.StateOptedOut), optoutv1.State_STATE_OPTED_OUT},
		{int(optoutd.StateOptedIn), optoutv1.State_STATE_OPTED_IN},
		{int(optoutd.DecisionUnspecified), optoutv1.Decision_DECISION_UNSPECIFIED},
		{int(optoutd.DecisionAllow), optoutv1.Decision_DECISION_ALLOW},
		{int(optoutd.DecisionDeny), optoutv1.Decision_DECISION_DENY},
		{int(optoutd.BasisUnspecified), optoutv1.Basis_BASIS_UNSPECIFIED},
		{int(optoutd.BasisPurposeRecord), optoutv1.Basis_BASIS_PURPOSE_RECORD},
		{int(optoutd.BasisAllRecord), optoutv1.Basis_BASIS_ALL_RECORD},
		{int(optoutd.BasisPurposeDefault), optoutv1.Basis_BASIS_PURPOSE_DEFAULT},
		{int(optoutd.BasisErased), optoutv1.Basis_BASIS_ERASED},
		{int(optoutd.BasisOverride), optoutv1.Basis_BASIS_OVERRIDE},
		{int(optoutd.DefaultUnspecified), optoutv1.Default_DEFAULT_UNSPECIFIED},
		{int(optoutd.DefaultAllow), optoutv1.Default_DEFAULT_ALLOW},
		{int(optoutd.DefaultDeny), optoutv1.Default_DEFAULT_DENY},
		{int(optoutd.AuditUnspecified), optoutv1.AuditKind_AUDIT_KIND_UNSPECIFIED},
		{int(optoutd.AuditSet), optoutv1.AuditKind_AUDIT_KIND_SET},
		{int(optoutd.AuditErase), optoutv1.AuditKind_AUDIT_KIND_ERASE},
		{int(optoutd.AuditOverrideCreated), optoutv1.AuditKind_AUDIT_KIND_OVERRIDE_CREATED},
		{int(optoutd.AuditOverrideRevoked), optoutv1.AuditKind_AUDIT_KIND_OVERRIDE_REVOKED},
		{int(optoutd.AuditOverrideExpired), optoutv1.AuditKind_AUDIT_KIND_OVERRIDE_EXPIRED},
		{int(optoutd.OverrideEffectUnspecified), optoutv1.OverrideEffect_OVERRIDE_EFFECT_UNSPECIFIED},
		{int(optoutd.OverrideAllow), optoutv1.OverrideEffect_OVERRIDE_EFFECT_ALLOW},
		{int(optoutd.OverrideDeny), optoutv1.OverrideEffect_OVERRIDE_EFFECT_DENY},
		{int(optoutd.OverrideStateUnspecified), optoutv1.OverrideState_OVERRIDE_STATE_UNSPECIFIED},
		{int(optoutd.OverrideActive), optoutv1.OverrideState_OVERRIDE_STATE_ACTIVE},
		{int(optoutd.OverrideRevoked), optoutv1.OverrideState_OVERRIDE_STATE_REVOKED},
		{int(optoutd.OverrideExpired), optoutv1.OverrideState_OVERRIDE_STATE_EXPIRED},
		{int(optoutd.RoleNone), optoutv1.Role_ROLE_UNSPECIFIED},
		{int(optoutd.RoleReader), optoutv1.Role_ROLE_READER},
		{int(optoutd.RoleWriter), optoutv1.Role_ROLE_WRITER},
		{int(optoutd.RoleAuditor), optoutv1.Role_ROLE_AUDITOR},
		{int(optoutd.RoleAdmin), optoutv1.Role_ROLE_ADMIN},
		{int(optoutd.PrincipalUnspecified), optoutv1.PrincipalKind_PRINCIPAL_KIND_UNSPECIFIED},
		{int(optoutd.PrincipalToken), optoutv1.PrincipalKind_PRINCIPAL_KIND_TOKEN},
		{int(optoutd.PrincipalCertificate), optoutv1.PrincipalKind_PRINCIPAL_KIND_CERTIFICATE},
	}
	checkEnumPairs(t, pairs)
}

func checkEnumPairs(t *testing.T, pairs []enumPair) {
	t.Helper()
	listed := map[protoreflect.FullName]map[protoreflect.EnumNumber]bool{}
	enums := map[protoreflect.FullName]protoreflect.EnumDescriptor{}
	for _, p := range pairs {
		d := p.wire.Descriptor()
		if int(p.wire.Number()) != p.domain {
			t.Errorf("%s is %d, its domain value %d", d.Values().ByNumber(p.wire.Number()).Name(), p.wire.Number(), p.domain)
		}
		if listed[d.FullName()] == nil {
			listed[d.FullName()] = map[protoreflect.EnumNumber]bool{}
		}
		listed[d.FullName()][p.wire.Number()] = true
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
