package cluster

import (
	"fmt"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
)

// maxCommandBytes bounds one proposed command. The largest command this
// release builds (a Set with every field at its limit) is under 1 KiB; the
// bound leaves room for batches without letting one entry balloon the log.
const maxCommandBytes = 1 << 20

// maxPeerRequestBytes bounds a peer RPC request body (the command plus its
// envelope).
const maxPeerRequestBytes = 2 * maxCommandBytes

// checkForwarded re-checks, on the leader, a command that a peer forwarded,
// against this release's request limits, before it can reach the log. The
// peer checked it already if it runs this release; one that runs another
// release, has a bug, or is not a peer at all may not have. The state
// machine refuses only what no release can apply (fsm/structure.go); this
// keeps the rest of the API's rules from being bypassed through the Raft
// port. TermStart and InitCluster are written only by a leader for itself,
// so no peer may forward them; a node registers only its own API address.
func checkForwarded(data []byte, caller string) error {
	if len(data) > maxCommandBytes {
		return optoutd.Errorf(optoutd.Invalid, "command: %d bytes is over the limit of %d", len(data), maxCommandBytes)
	}
	d, err := command.Decode(data)
	if err != nil {
		return optoutd.WrapError(optoutd.Invalid, err, "command does not decode")
	}
	switch c := d.Payload.(type) {
	case *fsmv1.SetCommand:
		if err := optoutd.ValidateSet(command.SetRequestOf(c)); err != nil {
			return err
		}
		return checkWindow(c.IdempotencyKey, c.IdempotencyTtlNanos)
	case *fsmv1.SetBatchCommand:
		if err := optoutd.ValidateSetBatch(command.SetBatchRequestOf(c)); err != nil {
			return err
		}
		return checkWindow(c.IdempotencyKey, c.IdempotencyTtlNanos)
	case *fsmv1.DefinePurposeCommand:
		if c.Purpose == nil {
			return optoutd.Errorf(optoutd.Invalid, "purpose: must be set")
		}
		return optoutd.ValidatePurposeDef(command.PurposeFromStored(&fsmv1.StoredPurpose{Def: c.Purpose}))
	case *fsmv1.UpdateSettingsCommand:
		if c.AuditRetentionNanos != nil && *c.AuditRetentionNanos < 0 {
			return optoutd.Errorf(optoutd.Invalid, "audit_retention: must not be negative")
		}
	case *fsmv1.EraseSubjectCommand:
		if err := optoutd.ValidateSubjectID(c.SubjectId); err != nil {
			return err
		}
		return optoutd.ValidateText("reason", c.Reason, optoutd.MaxReasonBytes)
	case *fsmv1.PutPrincipalCommand:
		if !optoutd.PrincipalNameRE.MatchString(c.Name) {
			return optoutd.Errorf(optoutd.Invalid, "name: %q must match %s", shorten(c.Name), optoutd.PrincipalNameRE)
		}
	case *fsmv1.DeletePrincipalCommand:
		if !optoutd.PrincipalNameRE.MatchString(c.Name) {
			return optoutd.Errorf(optoutd.Invalid, "name: %q must match %s", shorten(c.Name), optoutd.PrincipalNameRE)
		}
	case *fsmv1.RotateReceiptKeyCommand:
		if len(c.Seed) != 32 {
			return optoutd.Errorf(optoutd.Invalid, "seed: %d bytes, a receipt key seed is 32", len(c.Seed))
		}
	case *fsmv1.CreateOverrideCommand:
		if c.SubjectId != "" {
			if err := optoutd.ValidateSubjectID(c.SubjectId); err != nil {
				return err
			}
		}
		if err := optoutd.ValidatePurpose(c.Purpose); err != nil {
			return err
		}
		if err := optoutd.ValidateText("reason", c.Reason, optoutd.MaxReasonBytes); err != nil {
			return err
		}
		return optoutd.ValidateText("owner", c.Owner, optoutd.MaxOwnerBytes)
	case *fsmv1.RecordReportsCommand:
		if err := optoutd.ValidateService(c.Service); err != nil {
			return err
		}
		if c.Reports == 0 || c.Reports > optoutd.MaxReportBatch || uint32(len(c.Violations)) > c.Reports {
			return optoutd.Errorf(optoutd.Invalid, "reports: %d reports with %d violations, must be 1..%d", c.Reports, len(c.Violations), optoutd.MaxReportBatch)
		}
		for i, v := range c.Violations {
			if err := optoutd.ValidateText(fmt.Sprintf("violations[%d].evidence", i), v.Evidence, 4096); err != nil {
				return err
			}
		}
	case *fsmv1.EndOverrideCommand:
		if c.Id == 0 {
			return optoutd.Errorf(optoutd.Invalid, "id: required")
		}
		return optoutd.ValidateText("reason", c.Reason, optoutd.MaxReasonBytes)
	case *fsmv1.RegisterNodeCommand:
		if c.NodeId != caller {
			return optoutd.Errorf(optoutd.Invalid, "node_id: %q registers another node than the caller %q", shorten(c.NodeId), shorten(caller))
		}
		if err := checkHostPort("api_address", c.ApiAddress); err != nil {
			return optoutd.Errorf(optoutd.Invalid, "%v", err)
		}
	case *fsmv1.TermStartCommand, *fsmv1.InitClusterCommand:
		return optoutd.Errorf(optoutd.Invalid, "%s is written only by a leader for itself and cannot be forwarded", d.Type)
	default:
		return optoutd.Errorf(optoutd.Invalid, "%s cannot be forwarded", d.Type)
	}
	return nil
}

// shorten quotes at most 64 bytes of a value in an error message.
func shorten(s string) string {
	if len(s) <= 64 {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:64], len(s))
}

// checkWindow refuses an idempotency key without a positive window.
func checkWindow(key string, ttl int64) error {
	if key != "" && ttl <= 0 {
		return optoutd.Errorf(optoutd.Invalid, "idempotency_ttl_nanos: %d must be positive with an idempotency key", ttl)
	}
	return nil
}
