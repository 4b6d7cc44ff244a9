package optoutd

import (
	"fmt"
	"regexp"
	"time"
)

// SchemaVersion is the version of the API schema this build speaks. Clients
// send theirs in the Optout-Schema-Version header; the cluster can refuse
// clients below a minimum (AdminService.SetMinSchemaVersion). Version 1 was
// the core contract (Set, Check, CheckBatch, Get, Status); version 2 adds the
// purpose catalog, deny-wins writes, idempotency keys, audit and watch.
const SchemaVersion uint32 = 2

// AllPurposes is the purpose of a subject-wide opt-out: Check denies every
// purpose of a subject opted out of "all".
const AllPurposes = "all"

// More limits of the contract.
const (
	MaxIdempotencyKeyBytes = 128
	MaxDescriptionBytes    = 1024
	MaxHistoryPage         = 1000
	DefaultHistoryPage     = 100
	// DefaultIdempotencyWindow is how long an idempotency key is remembered.
	DefaultIdempotencyWindow = 24 * time.Hour
)

// DefaultDecision is what Check answers for a purpose when the subject has
// no record for it.
type DefaultDecision int

const (
	DefaultUnspecified DefaultDecision = iota
	// DefaultAllow is the opt-out model: processing is allowed until the
	// subject opts out (e.g. CCPA sale/sharing).
	DefaultAllow
	// DefaultDeny is the opt-in model: no record means no consent (e.g.
	// GDPR marketing consent).
	DefaultDeny
)

func (d DefaultDecision) String() string {
	switch d {
	case DefaultAllow:
		return "allow"
	case DefaultDeny:
		return "deny"
	default:
		return "unspecified"
	}
}

// Purpose is one entry of the catalog.
type Purpose struct {
	Name        string
	Description string
	Default     DefaultDecision
	// Version is the log index of the change that produced this definition.
	Version   uint64
	UpdatedAt time.Time
}

// StarterCatalog is installed on a fresh cluster unless --no-default-catalog
// is given. It is a starting point, not legal advice: operators redefine or
// add purposes for their jurisdiction.
var StarterCatalog = []Purpose{
	{Name: "email_marketing", Default: DefaultAllow, Description: "Marketing email. Opt-out model (CAN-SPAM style): allowed until the subject opts out."},
	{Name: "sms_marketing", Default: DefaultDeny, Description: "Marketing text messages. Prior express consent (TCPA style): denied until the subject opts in."},
	{Name: "analytics", Default: DefaultAllow, Description: "Product analytics. Opt-out model."},
	{Name: "sale_or_sharing", Default: DefaultAllow, Description: "Sale or sharing of personal information. CCPA/CPRA right to opt out."},
	{Name: "targeted_advertising", Default: DefaultAllow, Description: "Targeted advertising. US state-law right to opt out."},
	{Name: "profiling", Default: DefaultAllow, Description: "Profiling in furtherance of decisions. Opt-out model."},
}

// Basis says which fact decided a Check.
type Basis int

const (
	BasisUnspecified Basis = iota
	// BasisPurposeRecord: the subject's record for the purpose decided.
	BasisPurposeRecord
	// BasisAllRecord: the subject's opt-out of "all" decided (deny wins).
	BasisAllRecord
	// BasisPurposeDefault: no record; the purpose's default decided.
	BasisPurposeDefault
	// BasisErased: the subject was erased; its suppression decided.
	BasisErased
)

func (b Basis) String() string {
	return [...]string{"unspecified", "purpose_record", "all_record", "purpose_default", "erased"}[b]
}

// Decide is the one rule that turns facts into a decision. all is the
// subject's "all" record (or its erasure suppression, with erased set); rec
// is the record for the purpose. An opt-out of "all" denies everything; a
// purpose record decides next; with neither, the purpose's default does.
// An opt-in of "all" grants nothing: consent is given per purpose.
func Decide(p Purpose, all Record, erased bool, rec Record) CheckResult {
	switch {
	case all.State == StateOptedOut:
		b := BasisAllRecord
		if erased {
			b = BasisErased
		}
		return CheckResult{Decision: DecisionDeny, State: StateOptedOut, Version: all.Version, Basis: b, DecidedBy: AllPurposes}
	case rec.State == StateOptedOut:
		return CheckResult{Decision: DecisionDeny, State: rec.State, Version: rec.Version, Basis: BasisPurposeRecord, DecidedBy: p.Name}
	case rec.State == StateOptedIn:
		return CheckResult{Decision: DecisionAllow, State: rec.State, Version: rec.Version, Basis: BasisPurposeRecord, DecidedBy: p.Name}
	case p.Default == DefaultDeny:
		return CheckResult{Decision: DecisionDeny, Basis: BasisPurposeDefault, DecidedBy: p.Name}
	default:
		return CheckResult{Decision: DecisionAllow, Basis: BasisPurposeDefault, DecidedBy: p.Name}
	}
}

// ValidatePurposeDef checks a purpose definition from a client.
func ValidatePurposeDef(p Purpose) error {
	if err := ValidatePurpose(p.Name); err != nil {
		return err
	}
	if p.Name == AllPurposes {
		return Errorf(Invalid, "purpose: %q is reserved for the subject-wide opt-out and cannot be defined", AllPurposes)
	}
	if p.Default != DefaultAllow && p.Default != DefaultDeny {
		return Errorf(Invalid, "default_decision: must be DEFAULT_ALLOW or DEFAULT_DENY")
	}
	return validateText("description", p.Description, MaxDescriptionBytes)
}

// ValidateIdempotencyKey checks an idempotency key ("" means none).
func ValidateIdempotencyKey(k string) error {
	if len(k) > MaxIdempotencyKeyBytes {
		return Errorf(Invalid, "idempotency_key: %d bytes is over the limit of %d", len(k), MaxIdempotencyKeyBytes)
	}
	return validateText("idempotency_key", k, MaxIdempotencyKeyBytes)
}

// AuditKind is the kind of change an audit entry records.
type AuditKind int

const (
	AuditUnspecified AuditKind = iota
	AuditSet
	AuditErase
)

func (k AuditKind) String() string {
	return [...]string{"unspecified", "set", "erase"}[k]
}

// AuditEntry is one change in the tamper-evident history.
type AuditEntry struct {
	Version    uint64
	Time       time.Time
	Kind       AuditKind
	SubjectID  string // empty once erased
	Erased     bool
	Purpose    string
	OldState   State
	NewState   State
	OldVersion uint64
	Source     string // empty once erased
	Reason     string // empty once erased
	Caller     string
	PrevHash   []byte
	Hash       []byte
}

// AuditReport is the result of walking the hash chain.
type AuditReport struct {
	Entries uint64
	// FirstVersion and LastVersion bound the entries checked.
	FirstVersion, LastVersion uint64
	// BrokenAt is the version of the first entry that fails, 0 if none.
	BrokenAt uint64
	Problem  string
}

// OK reports whether the chain verified.
func (r AuditReport) OK() bool { return r.BrokenAt == 0 && r.Problem == "" }

func (r AuditReport) String() string {
	if r.OK() {
		return fmt.Sprintf("audit chain OK: %d entries, versions %d..%d", r.Entries, r.FirstVersion, r.LastVersion)
	}
	return fmt.Sprintf("audit chain BROKEN at version %d: %s (%d entries checked before it)", r.BrokenAt, r.Problem, r.Entries)
}

// Settings is the replicated cluster configuration.
type Settings struct {
	Initialized      bool
	MinSchemaVersion uint32
	// AuditRetention is how long history is kept; 0 keeps it forever.
	AuditRetention time.Duration
	CatalogVersion uint64
	// AuditCompactedThrough is the newest version removed by retention; a
	// watch must start at or after it.
	AuditCompactedThrough uint64
}

// StateAtResult answers "what was the state of (subject, purpose) as of a
// version".
type StateAtResult struct {
	AsOf   uint64
	Check  CheckResult
	Record Record // the purpose record as of AsOf (zero if none)
}

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
	return [...]string{"none", "reader", "writer", "auditor", "admin"}[r]
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

// PrincipalNameRE is what token names and certificate common names must
// match.
var PrincipalNameRE = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,128}$`)
