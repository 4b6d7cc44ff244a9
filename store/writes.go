package store

import (
	"context"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	"google.golang.org/protobuf/proto"
)

// Set validates and applies one write. Errors are *optoutd.Error; with
// Unavailable the write was certainly not applied, with OutcomeUnknown it
// may have been.
func (s *Store) Set(ctx context.Context, req optoutd.SetRequest) (optoutd.SetResult, error) {
	if err := optoutd.ValidateSet(req); err != nil {
		return optoutd.SetResult{}, err
	}
	res, err := s.write(ctx, command.Set(req, s.node.IdempotencyWindow()))
	if err != nil {
		return optoutd.SetResult{}, err
	}
	return command.SetResultOf(req.Key, res)
}

// DefinePurpose creates or redefines a catalog entry. expectedCatalog, if
// not nil, makes it a compare-and-set on the catalog version.
func (s *Store) DefinePurpose(ctx context.Context, p optoutd.Purpose, expectedCatalog *uint64, client uint32, caller string) (optoutd.Purpose, uint64, error) {
	if err := optoutd.ValidatePurposeDef(p); err != nil {
		return optoutd.Purpose{}, 0, err
	}
	res, err := s.write(ctx, command.DefinePurpose(p, expectedCatalog, client, caller))
	if err != nil {
		return optoutd.Purpose{}, 0, err
	}
	return command.PurposeFromStored(res.Purpose), res.CatalogVersion, nil
}

// UpdateSettings changes the replicated settings; nil fields stay.
func (s *Store) UpdateSettings(ctx context.Context, minSchema *uint32, retention *time.Duration, client uint32, caller string) (optoutd.Settings, error) {
	res, err := s.write(ctx, command.UpdateSettings(minSchema, retention, client, caller))
	if err != nil {
		return optoutd.Settings{}, err
	}
	return command.SettingsOf(res), nil
}

// EraseSubject removes a subject's identifier and keeps its suppression.
// It returns the erasure's version and how many records were erased.
func (s *Store) EraseSubject(ctx context.Context, subject, reason string, client uint32, caller string) (uint64, uint32, error) {
	if err := optoutd.ValidateSubjectID(subject); err != nil {
		return 0, 0, err
	}
	res, err := s.write(ctx, command.EraseSubject(subject, reason, client, caller))
	if err != nil {
		return 0, 0, err
	}
	return res.Index, res.ErasedRecords, nil
}

// RotateReceiptKey adds a receipt signing key from seed and makes it
// current; with onlyIfNone it adds one only if the cluster has none. It
// returns the key that is current afterwards.
func (s *Store) RotateReceiptKey(ctx context.Context, seed []byte, onlyIfNone bool, client uint32, caller string) (uint32, error) {
	res, err := s.write(ctx, command.RotateReceiptKey(seed, onlyIfNone, client, caller))
	if err != nil {
		return 0, err
	}
	return res.ReceiptKeyId, nil
}

// CreateOverride opens an override and returns it.
func (s *Store) CreateOverride(ctx context.Context, o optoutd.Override, client uint32, caller string) (optoutd.Override, error) {
	res, err := s.write(ctx, command.CreateOverride(o, client, caller))
	if err != nil {
		return optoutd.Override{}, err
	}
	return command.OverrideFromStored(res.OverrideId, res.Override), nil
}

// EndOverride revokes an override (expire false), or records that it ran
// to its expiry (expire true), and returns it.
func (s *Store) EndOverride(ctx context.Context, id uint64, expire bool, reason string, client uint32, caller string) (optoutd.Override, error) {
	c := command.RevokeOverride(id, reason, client, caller)
	if expire {
		c = command.ExpireOverride(id)
	}
	res, err := s.write(ctx, c)
	if err != nil {
		return optoutd.Override{}, err
	}
	return command.OverrideFromStored(res.OverrideId, res.Override), nil
}

// SetMaxOverride changes the cap on an override's lifetime.
func (s *Store) SetMaxOverride(ctx context.Context, max time.Duration, client uint32, caller string) (optoutd.Settings, error) {
	res, err := s.write(ctx, command.SetMaxOverride(max, client, caller))
	if err != nil {
		return optoutd.Settings{}, err
	}
	return command.SettingsOf(res), nil
}

// RecordReports records one judged ReportProcessing batch and returns the
// log index it was recorded at (the base of its violations' ids).
func (s *Store) RecordReports(ctx context.Context, b optoutd.ReportBatch, client uint32, caller string) (uint64, error) {
	res, err := s.write(ctx, command.RecordReports(b, client, caller))
	if err != nil {
		return 0, err
	}
	return res.Index, nil
}

// SetBatch validates and applies many writes in one log entry. Errors are
// for the whole batch (as Set's); a write a rule refused is reported in its
// item.
func (s *Store) SetBatch(ctx context.Context, req optoutd.SetBatchRequest) (optoutd.SetBatchResult, error) {
	if err := optoutd.ValidateSetBatch(req); err != nil {
		return optoutd.SetBatchResult{}, err
	}
	cmd := command.SetBatch(req, s.node.IdempotencyWindow())
	if req.DryRun {
		return s.previewSetBatch(ctx, req, cmd)
	}
	res, err := s.write(ctx, cmd)
	if err != nil {
		return optoutd.SetBatchResult{}, err
	}
	return command.SetBatchResultOf(req, res)
}

// previewSetBatch is SetBatch's dry run: the same command, evaluated at a
// read index and never proposed.
func (s *Store) previewSetBatch(ctx context.Context, req optoutd.SetBatchRequest, cmd proto.Message) (optoutd.SetBatchResult, error) {
	res, err := s.node.Preview(ctx, cmd)
	if err != nil {
		return optoutd.SetBatchResult{}, err
	}
	if err := command.ResultError(res); err != nil {
		return optoutd.SetBatchResult{}, err
	}
	out, err := command.SetBatchResultOf(req, res)
	out.DryRun = true
	if !res.Replayed {
		// The entry it would have been; the state it saw is the one before.
		out.Version = res.Index - 1
	}
	return out, err
}
