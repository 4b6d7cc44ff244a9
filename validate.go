package optoutd

import (
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"
)

// Limits on request fields. They are part of the contract: the API rejects
// anything larger with a message that names the field and the limit.
const (
	MaxSubjectIDBytes = 256
	MaxPurposeBytes   = 64
	MaxSourceBytes    = 256
	MaxReasonBytes    = 256
	MaxBatchChecks    = 1000
)

// More limits of the contract.
const (
	MaxIdempotencyKeyBytes = 128
	MaxDescriptionBytes    = 1024
	MaxHistoryPage         = 1000
	DefaultHistoryPage     = 100
	// DefaultIdempotencyWindow is how long an idempotency key is remembered.
	DefaultIdempotencyWindow = 24 * time.Hour
)

// PrincipalNameRE is what token names and certificate common names must
// match.
var PrincipalNameRE = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,128}$`)

var purposeRE = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)

// ValidateKey checks a key's fields and names the first bad one.
func ValidateKey(k Key) error {
	if err := ValidateSubjectID(k.SubjectID); err != nil {
		return err
	}
	return ValidatePurpose(k.Purpose)
}

// ValidateSubjectID checks that id is 1 to MaxSubjectIDBytes of valid UTF-8.
func ValidateSubjectID(id string) error {
	switch {
	case id == "":
		return Errorf(Invalid, "subject_id: must not be empty")
	case len(id) > MaxSubjectIDBytes:
		return Errorf(Invalid, "subject_id: %d bytes is over the limit of %d", len(id), MaxSubjectIDBytes)
	case !utf8.ValidString(id):
		return Errorf(Invalid, "subject_id: must be valid UTF-8")
	}
	return nil
}

// ValidatePurpose checks p against [a-z0-9_.-]{1,64}.
func ValidatePurpose(p string) error {
	if !purposeRE.MatchString(p) {
		return Errorf(Invalid, "purpose: %q must match [a-z0-9_.-]{1,%d}", truncate(p, 80), MaxPurposeBytes)
	}
	return nil
}

// ValidateSet checks every field of a write.
func ValidateSet(r SetRequest) error {
	if err := ValidateKey(r.Key); err != nil {
		return err
	}
	if r.State != StateOptedOut && r.State != StateOptedIn {
		return Errorf(Invalid, "state: must be STATE_OPTED_OUT or STATE_OPTED_IN")
	}
	if err := validateText("source", r.Source, MaxSourceBytes); err != nil {
		return err
	}
	if err := validateText("reason", r.Reason, MaxReasonBytes); err != nil {
		return err
	}
	return ValidateIdempotencyKey(r.IdempotencyKey)
}

// ValidateText checks a free-text field: at most limit bytes of UTF-8.
func ValidateText(field, s string, limit int) error { return validateText(field, s, limit) }

func validateText(field, s string, limit int) error {
	if len(s) > limit {
		return Errorf(Invalid, "%s: %d bytes is over the limit of %d", field, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return Errorf(Invalid, "%s: must be valid UTF-8", field)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:n], len(s))
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

// ValidateService checks a reporting or consuming service's name: it
// matches the purpose pattern, [a-z0-9_.-]{1,64}, because it becomes a
// metric label and a key of violation scores.
func ValidateService(s string) error {
	if !purposeRE.MatchString(s) {
		return Errorf(Invalid, "service: %q must match [a-z0-9_.-]{1,64}", truncate(s, 80))
	}
	return nil
}
