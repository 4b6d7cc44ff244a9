package fsm

import (
	"encoding/binary"
	"fmt"

	"github.com/optoutd/optoutd"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
)

const allPurposes = optoutd.AllPurposes

// bootstrapPrincipal names the admin token given to InitCluster. It is
// created once, with the cluster; revoking it later sticks.
const bootstrapPrincipal = "bootstrap"

// applyInit runs once per cluster: it stores the erasure key and the
// starter catalog. Later InitCluster entries (a new leader that raced with
// the first) change nothing, so the first one wins everywhere.
func (s *state) applyInit(e entry, c *fsmv1.InitClusterCommand) (*fsmv1.Result, error) {
	if s.settings.Initialized {
		return &fsmv1.Result{Index: e.index, Settings: s.settings}, nil
	}
	// Everything is checked before anything is written: a refused init
	// changes nothing, and the next leader initialises the cluster.
	if len(c.ErasureKey) < 32 {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "erasure key must be at least 32 bytes, got %d", len(c.ErasureKey)), nil
	}
	for i, p := range c.Purposes {
		if msg := purposeProblem(p); msg != "" {
			return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "starter catalog entry %d: %s", i, msg), nil
		}
	}
	boot := &fsmv1.PutPrincipalCommand{
		Name: bootstrapPrincipal, Kind: fsmv1.PrincipalKind_PRINCIPAL_KIND_TOKEN,
		Role: fsmv1.Role_ROLE_ADMIN, TokenSha256: c.BootstrapTokenSha256, CreateOnly: true,
	}
	if len(c.BootstrapTokenSha256) > 0 {
		if msg := principalProblem(boot); msg != "" {
			return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "bootstrap token: %s", msg), nil
		}
	}
	if err := s.b(bucketMeta).Put(keyErasureKey, c.ErasureKey); err != nil {
		return nil, err
	}
	s.setKey(append([]byte(nil), c.ErasureKey...))
	for _, p := range c.Purposes {
		if err := s.storePurpose(e, p); err != nil {
			return nil, err
		}
	}
	if len(c.BootstrapTokenSha256) > 0 {
		// A fresh cluster has no principals, so this cannot be refused.
		if _, err := s.putPrincipal(e, boot); err != nil {
			return nil, err
		}
	}
	s.settings.Initialized = true
	if err := s.saveSettings(); err != nil {
		return nil, err
	}
	return &fsmv1.Result{Index: e.index, Settings: s.settings}, nil
}

func (s *state) applyDefinePurpose(e entry, c *fsmv1.DefinePurposeCommand) (*fsmv1.Result, error) {
	if r := s.schemaTooOld(e, c.ClientSchemaVersion); r != nil {
		return r, nil
	}
	if msg := purposeProblem(c.Purpose); msg != "" {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "%s", msg), nil
	}
	if c.ExpectedCatalogVersion != nil && *c.ExpectedCatalogVersion != s.settings.CatalogVersion {
		return &fsmv1.Result{
			Index:          e.index,
			ErrorCode:      fsmv1.ErrorCode_ERROR_CODE_VERSION_MISMATCH,
			ErrorMessage:   fmt.Sprintf("expected catalog version %d, current catalog version %d", *c.ExpectedCatalogVersion, s.settings.CatalogVersion),
			CurrentVersion: s.settings.CatalogVersion,
		}, nil
	}
	if err := s.storePurpose(e, c.Purpose); err != nil {
		return nil, err
	}
	if err := s.saveSettings(); err != nil {
		return nil, err
	}
	sp, _, err := s.purpose(c.Purpose.Name)
	return &fsmv1.Result{Index: e.index, Purpose: sp}, err
}

// storePurpose writes a definition, keeps its history, and bumps the
// catalog version (the caller saves the settings).
func (s *state) storePurpose(e entry, def *fsmv1.PurposeDef) error {
	s.settings.CatalogVersion++
	sp := &fsmv1.StoredPurpose{
		Def:                def,
		Version:            e.index,
		UpdatedAtUnixNanos: e.cmd.Stamp,
		CatalogVersion:     s.settings.CatalogVersion,
	}
	if err := put(s.b(bucketPurposes), []byte(def.Name), sp); err != nil {
		return err
	}
	return put(s.b(bucketPurposeHistory), purposeHistoryKey(def.Name, e.index), sp)
}

func purposeHistoryKey(name string, version uint64) []byte {
	k := append([]byte(name), 0)
	return binary.BigEndian.AppendUint64(k, version)
}

func (s *state) purpose(name string) (*fsmv1.StoredPurpose, bool, error) {
	var sp fsmv1.StoredPurpose
	ok, err := loadProto(s.b(bucketPurposes), []byte(name), &sp)
	if err != nil || !ok {
		return nil, false, err
	}
	return &sp, true, nil
}

func (s *state) applyUpdateSettings(e entry, c *fsmv1.UpdateSettingsCommand) (*fsmv1.Result, error) {
	if r := s.schemaTooOld(e, c.ClientSchemaVersion); r != nil {
		return r, nil
	}
	if c.AuditRetentionNanos != nil && *c.AuditRetentionNanos < 0 {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "audit retention must not be negative"), nil
	}
	if c.MaxOverrideNanos != nil && *c.MaxOverrideNanos <= 0 {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "max_override must be positive"), nil
	}
	if c.MinSchemaVersion != nil {
		s.settings.MinSchemaVersion = *c.MinSchemaVersion
	}
	if c.MaxOverrideNanos != nil {
		s.settings.MaxOverrideNanos = *c.MaxOverrideNanos
	}
	if c.AuditRetentionNanos != nil {
		s.settings.AuditRetentionNanos = *c.AuditRetentionNanos
	}
	if err := s.saveSettings(); err != nil {
		return nil, err
	}
	return &fsmv1.Result{Index: e.index, Settings: s.settings}, nil
}
