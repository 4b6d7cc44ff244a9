package command

import (
	"errors"
	"time"

	"github.com/optoutd/optoutd"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
)

// ResultError turns a rule violation reported by the state machine into a
// domain error, and is nil for a command that applied. A refused command
// was applied as a no-op; nothing changed.
func ResultError(res *fsmv1.Result) error {
	switch res.ErrorCode {
	case fsmv1.ErrorCode_ERROR_CODE_UNSPECIFIED:
		return nil
	case fsmv1.ErrorCode_ERROR_CODE_VERSION_MISMATCH:
		return &optoutd.Error{Code: optoutd.VersionMismatch, Message: res.ErrorMessage, CurrentVersion: res.CurrentVersion}
	case fsmv1.ErrorCode_ERROR_CODE_NOT_FOUND:
		return optoutd.Errorf(optoutd.NotFound, "%s", res.ErrorMessage)
	case fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION:
		return optoutd.Errorf(optoutd.FailedPrecondition, "%s", res.ErrorMessage)
	default:
		return optoutd.Errorf(optoutd.Invalid, "%s", res.ErrorMessage)
	}
}

// SetResultOf is what an applied Set of key k produced.
func SetResultOf(k optoutd.Key, res *fsmv1.Result) (optoutd.SetResult, error) {
	if res.Record == nil {
		return optoutd.SetResult{}, optoutd.Errorf(optoutd.Internal, "set at index %d returned no record", res.Index)
	}
	return optoutd.SetResult{Record: RecordFromStored(k, res.Record), Replayed: res.Replayed, CatalogVersion: res.CatalogVersion}, nil
}

// SettingsOf is the settings an applied UpdateSettings left.
func SettingsOf(res *fsmv1.Result) optoutd.Settings {
	s := res.GetSettings()
	return optoutd.Settings{
		Initialized:      s.GetInitialized(),
		MinSchemaVersion: s.GetMinSchemaVersion(),
		AuditRetention:   time.Duration(s.GetAuditRetentionNanos()),
		CatalogVersion:   s.GetCatalogVersion(),
		MaxOverride:      MaxOverrideOf(s),
		OverridesExpired: s.GetOverridesExpired(),
	}
}

// MaxOverrideOf is the settings' cap on an override's lifetime, with the
// default for a cluster that never set one.
func MaxOverrideOf(s *fsmv1.Settings) time.Duration {
	if n := s.GetMaxOverrideNanos(); n > 0 {
		return time.Duration(n)
	}
	return optoutd.DefaultMaxOverride
}

// SetBatchResultOf is what an applied SetBatch of b produced: one item per
// write, a record or the rule that refused it.
func SetBatchResultOf(b optoutd.SetBatchRequest, res *fsmv1.Result) (optoutd.SetBatchResult, error) {
	if len(res.Items) != len(b.Sets) {
		return optoutd.SetBatchResult{}, optoutd.Errorf(optoutd.Internal, "set batch at index %d returned %d results for %d writes", res.Index, len(res.Items), len(b.Sets))
	}
	out := optoutd.SetBatchResult{Version: res.Index, Items: make([]optoutd.SetBatchItem, len(res.Items)), Replayed: res.Replayed, CatalogVersion: res.CatalogVersion}
	for i, it := range res.Items {
		if err := ResultError(it); err != nil {
			var de *optoutd.Error
			if !errors.As(err, &de) {
				return optoutd.SetBatchResult{}, err
			}
			out.Items[i].Err = de
			continue
		}
		if it.Record == nil {
			return optoutd.SetBatchResult{}, optoutd.Errorf(optoutd.Internal, "set batch at index %d returned no record for write %d", res.Index, i)
		}
		out.Items[i].Record = RecordFromStored(b.Sets[i].Key, it.Record)
		out.Items[i].PreviousState, out.Items[i].PreviousVersion = optoutd.State(it.PreviousState), it.PreviousVersion
	}
	return out, nil
}
