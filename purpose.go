package optoutd

import "time"

// AllPurposes is the purpose of a subject-wide opt-out: Check denies every
// purpose of a subject opted out of "all".
const AllPurposes = "all"

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
