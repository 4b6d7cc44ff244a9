package api

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

// maxRetention bounds SetAuditRetention: long enough for any legal hold.
const maxRetention = 100 * 365 * 24 * time.Hour

type adminServer struct {
	optoutv1connect.UnimplementedAdminServiceHandler
	store      Store
	principals Principals
}

func (s *adminServer) GetSettings(ctx context.Context, req *connect.Request[optoutv1.GetSettingsRequest]) (*connect.Response[optoutv1.GetSettingsResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	var st optoutd.Settings
	_, cat, err := read(ctx, s.store, func(v optoutd.View) (err error) {
		st, err = v.Settings()
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	return withCatalog(&optoutv1.GetSettingsResponse{Settings: settingsToProto(st)}, cat), nil
}

func (s *adminServer) SetMinSchemaVersion(ctx context.Context, req *connect.Request[optoutv1.SetMinSchemaVersionRequest]) (*connect.Response[optoutv1.SetMinSchemaVersionResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	min := req.Msg.MinSchemaVersion
	if min > optoutd.SchemaVersion {
		return nil, rejectedWrite(invalidf("min_schema_version: %d is above the schema version this server speaks (%d); it would lock out every client", min, optoutd.SchemaVersion))
	}
	c := callOf(ctx)
	st, err := s.store.UpdateSettings(ctx, &min, nil, c.schema, c.caller)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return withCatalog(&optoutv1.SetMinSchemaVersionResponse{Settings: settingsToProto(st)}, st.CatalogVersion), nil
}

func (s *adminServer) SetAuditRetention(ctx context.Context, req *connect.Request[optoutv1.SetAuditRetentionRequest]) (*connect.Response[optoutv1.SetAuditRetentionResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	r := req.Msg.Retention
	if r == nil {
		return nil, rejectedWrite(invalidf("retention: must be set (0s keeps history forever)"))
	}
	if err := r.CheckValid(); err != nil {
		return nil, rejectedWrite(invalidf("retention: %v", err))
	}
	d := r.AsDuration()
	if d < 0 || d > maxRetention {
		return nil, rejectedWrite(invalidf("retention: %v is outside 0..%v", d, maxRetention))
	}
	if d > 0 && d < time.Hour {
		return nil, rejectedWrite(invalidf("retention: %v is under the minimum of 1h (0 keeps history forever)", d))
	}
	c := callOf(ctx)
	st, err := s.store.UpdateSettings(ctx, nil, &d, c.schema, c.caller)
	if err != nil {
		return nil, writeError(ctx, err)
	}
	return withCatalog(&optoutv1.SetAuditRetentionResponse{Settings: settingsToProto(st)}, st.CatalogVersion), nil
}
