package fsm

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/optoutd/optoutd"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

func argString(t *testing.T, d *datadriven.TestData, key string) string {
	var v string
	d.ScanArgs(t, key, &v)
	return v
}

func optString(t *testing.T, d *datadriven.TestData, key string) string {
	if !d.HasArg(key) {
		return ""
	}
	return argString(t, d, key)
}

func argUint(t *testing.T, d *datadriven.TestData, key string) uint64 {
	v, err := strconv.ParseUint(argString(t, d, key), 10, 64)
	if err != nil {
		d.Fatalf(t, "%s: %v", key, err)
	}
	return v
}

func optUint(t *testing.T, d *datadriven.TestData, key string) uint64 {
	if !d.HasArg(key) {
		return 0
	}
	return argUint(t, d, key)
}

func argInt(t *testing.T, d *datadriven.TestData, key string) int64 {
	v, err := strconv.ParseInt(argString(t, d, key), 10, 64)
	if err != nil {
		d.Fatalf(t, "%s: %v", key, err)
	}
	return v
}

func stampArg(t *testing.T, d *datadriven.TestData) int64 {
	if !d.HasArg("stamp") {
		return 0
	}
	return argInt(t, d, "stamp")
}

func (h *harness) runRead(t *testing.T, d *datadriven.TestData) string {
	var out []string
	err := h.f.View(func(r *Reader) error {
		switch d.Cmd {
		case "check":
			res, err := r.Check(optoutd.Key{SubjectID: argString(t, d, "subject"), Purpose: argString(t, d, "purpose")})
			if err != nil {
				return err
			}
			out = append(out, formatCheck(res))
		case "history":
			limit := 100
			if d.HasArg("limit") {
				limit = int(argUint(t, d, "limit"))
			}
			es, err := r.History(argString(t, d, "subject"), optString(t, d, "purpose"), optUint(t, d, "before"), limit)
			if err != nil {
				return err
			}
			for _, e := range es {
				out = append(out, formatAudit(e))
			}
		case "changes":
			limit := 100
			if d.HasArg("limit") {
				limit = int(argUint(t, d, "limit"))
			}
			es, err := r.Changes(optUint(t, d, "after"), limit)
			if err != nil {
				return err
			}
			for _, e := range es {
				out = append(out, formatAudit(e))
			}
		case "state-at":
			res, err := r.StateAt(optoutd.Key{SubjectID: argString(t, d, "subject"), Purpose: argString(t, d, "purpose")}, argUint(t, d, "version"))
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("as_of=%d %s", res.AsOf, formatCheck(res.Check)))
		case "verify":
			rep, err := r.VerifyAudit()
			if err != nil {
				return err
			}
			out = append(out, rep.String())
		case "purposes":
			ps, err := r.Purposes()
			if err != nil {
				return err
			}
			for _, p := range ps {
				out = append(out, fmt.Sprintf("%s default=%s version=%d", p.Name, p.Default, p.Version))
			}
		case "settings-show":
			s, err := r.Settings()
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%+v", s))
		case "principals":
			ps, err := r.Principals()
			if err != nil {
				return err
			}
			for _, p := range ps {
				out = append(out, fmt.Sprintf("%s kind=%d role=%s token=%v", p.Name, p.Kind, p.Role, len(p.TokenSHA256) > 0))
			}
		case "principal-by-token":
			sum := sha256.Sum256([]byte(argString(t, d, "token")))
			p, ok, err := r.PrincipalByToken(sum[:])
			if err != nil {
				return err
			}
			if !ok {
				out = append(out, "no principal")
			} else {
				out = append(out, fmt.Sprintf("%s role=%s", p.Name, p.Role))
			}
		case "corrupt-audit":
			return nil // handled below, outside the read transaction
		}
		return nil
	})
	if d.Cmd == "corrupt-audit" {
		err = h.corruptAudit(argUint(t, d, "version"))
		out = append(out, "corrupted")
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.Join(out, "\n")
}

// corruptAudit flips an audit entry's new state behind the FSM's back, as
// someone editing the file would.
func (h *harness) corruptAudit(version uint64) error {
	h.f.mu.RLock()
	defer h.f.mu.RUnlock()
	return h.f.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		var a fsmv1.AuditEntry
		if err := proto.Unmarshal(b.Get(u64(version)), &a); err != nil {
			return err
		}
		a.NewState = fsmv1.State_STATE_OPTED_IN
		v, err := proto.Marshal(&a)
		if err != nil {
			return err
		}
		return b.Put(u64(version), v)
	})
}

func formatCheck(c optoutd.CheckResult) string {
	return fmt.Sprintf("decision=%s basis=%s decided_by=%s state=%s version=%d", c.Decision, c.Basis, c.DecidedBy, c.State, c.Version)
}

func formatAudit(e optoutd.AuditEntry) string {
	subject := e.SubjectID
	if e.Erased {
		subject = "<erased>"
	}
	return fmt.Sprintf("v%d %s %s/%s %s->%s (was v%d) source=%q reason=%q caller=%q", e.Version, e.Kind, subject, e.Purpose, e.OldState, e.NewState, e.OldVersion, e.Source, e.Reason, e.Caller)
}
