package optoutd

import "strconv"

import "time"

// Role grants a set of calls; see the api package's access table.
type Role int

const (
	RoleNone Role = iota
	RoleReader
	RoleWriter
	RoleAuditor
	RoleAdmin
)

func (r Role) String() string {
	names := [...]string{"none", "reader", "writer", "auditor", "admin"}
	if r < 0 || int(r) >= len(names) {
		return "role(" + strconv.Itoa(int(r)) + ")"
	}
	return names[r]
}

// ParseRole reads "reader", "writer", "auditor" or "admin".
func ParseRole(s string) (Role, error) {
	for r := RoleReader; r <= RoleAdmin; r++ {
		if r.String() == s {
			return r, nil
		}
	}
	return RoleNone, Errorf(Invalid, "role: %q is not reader, writer, auditor or admin", s)
}

// PrincipalKind says how a principal authenticates.
type PrincipalKind int

const (
	PrincipalUnspecified PrincipalKind = iota
	PrincipalToken
	PrincipalCertificate
)

// Principal is an identity that may call the API.
type Principal struct {
	Name        string
	Kind        PrincipalKind
	Role        Role
	TokenSHA256 []byte
	CreatedAt   time.Time
}
