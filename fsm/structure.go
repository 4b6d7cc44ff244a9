package fsm

import (
	"fmt"
	"strings"

	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"go.etcd.io/bbolt"
)

// What apply itself refuses.
//
// apply never re-checks a release's request limits (the purpose name
// pattern, field lengths, the principal name pattern): those belong to the
// API of one release, and a replica that judged an entry by its own
// release's limits could disagree with a replica of another release about
// the same entry. apply refuses only what no release can store or give a
// meaning to, and those rules are frozen with the log format:
//
//   - a bbolt key over bbolt.MaxKeySize (32 KiB): the storage cannot hold it;
//   - an empty key, a state or default outside the enum, a purpose named
//     "all" (the subject-wide record), a NUL in a purpose name (it separates
//     the name from the version in the history key), a token that is not a
//     SHA-256, an idempotency key without a positive window.
//
// Each is a rule failure: the entry is answered with an error code and
// changes nothing, and the state machine goes on. Only an entry that cannot
// be decoded (or is of a newer format) halts it. The leader checks forwarded
// commands against the release's limits before they reach the log; the API
// checks them before that.
const maxKey = bbolt.MaxKeySize

// keyProblem names a key that bbolt cannot store, or "".
func keyProblem(field string, key []byte) string {
	switch {
	case len(key) == 0:
		return field + " must not be empty"
	case len(key) > maxKey:
		return fmt.Sprintf("%s is too long to store (%d bytes of key; the storage holds at most %d)", field, len(key), maxKey)
	}
	return ""
}

// setProblem is the structural check of a Set.
func setProblem(c *fsmv1.SetCommand) string {
	switch {
	case c.State != fsmv1.State_STATE_OPTED_OUT && c.State != fsmv1.State_STATE_OPTED_IN:
		return "state must be opted_out or opted_in, got " + c.State.String()
	case c.SubjectId == "" || c.Purpose == "":
		return "subject_id and purpose must be set"
	}
	if p := keyProblem("subject_id and purpose", recordKey(c.SubjectId, c.Purpose)); p != "" {
		return p
	}
	return idempotencyProblem(c.IdempotencyKey, c.IdempotencyTtlNanos)
}

// idempotencyProblem is the structural check of an idempotency key and its
// window (a Set's or a SetBatch's); no key is no problem.
func idempotencyProblem(key string, ttl int64) string {
	if key == "" {
		return ""
	}
	if ttl <= 0 {
		return fmt.Sprintf("an idempotency key needs a positive window (idempotency_ttl_nanos), got %d", ttl)
	}
	// The expiry index prefixes the key with 8 bytes.
	return keyProblem("idempotency_key", expiryKey(0, []byte(key)))
}

// purposeProblem is the structural check of a definition.
func purposeProblem(p *fsmv1.PurposeDef) string {
	switch {
	case p == nil:
		return "purpose must be set"
	case p.Name == "":
		return "purpose name must not be empty"
	case p.Name == allPurposes:
		return `purpose "all" is the subject-wide opt-out and cannot be defined`
	case strings.IndexByte(p.Name, 0) >= 0:
		return "purpose name must not contain NUL"
	case p.DefaultDecision != fsmv1.DefaultDecision_DEFAULT_DECISION_ALLOW && p.DefaultDecision != fsmv1.DefaultDecision_DEFAULT_DECISION_DENY:
		return "default_decision must be allow or deny"
	}
	return keyProblem("purpose name", purposeHistoryKey(p.Name, 0))
}

// principalProblem is the structural check of a principal.
func principalProblem(c *fsmv1.PutPrincipalCommand) string {
	switch {
	case c.Role < fsmv1.Role_ROLE_READER || c.Role > fsmv1.Role_ROLE_ADMIN:
		return "role must be reader, writer, auditor or admin"
	case c.Kind == fsmv1.PrincipalKind_PRINCIPAL_KIND_TOKEN && len(c.TokenSha256) != 32:
		return "a token principal needs a 32-byte SHA-256"
	case c.Kind == fsmv1.PrincipalKind_PRINCIPAL_KIND_CERTIFICATE && len(c.TokenSha256) != 0:
		return "a certificate principal carries no token"
	case c.Kind != fsmv1.PrincipalKind_PRINCIPAL_KIND_TOKEN && c.Kind != fsmv1.PrincipalKind_PRINCIPAL_KIND_CERTIFICATE:
		return "kind must be token or certificate"
	}
	return keyProblem("name", []byte(c.Name))
}
