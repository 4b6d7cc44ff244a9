package api

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api/gen/optout/v1/optoutv1connect"
)

// access is the one table from procedure to the roles that may call it.
// Health checks, reflection, /healthz, /readyz and /metrics are not behind
// it (they are separate handlers).
var access = func() map[string][]optoutd.Role {
	reader := []optoutd.Role{optoutd.RoleReader, optoutd.RoleWriter, optoutd.RoleAuditor, optoutd.RoleAdmin}
	writer := []optoutd.Role{optoutd.RoleWriter, optoutd.RoleAdmin}
	auditor := []optoutd.Role{optoutd.RoleAuditor, optoutd.RoleAdmin}
	admin := []optoutd.Role{optoutd.RoleAdmin}
	m := map[string][]optoutd.Role{}
	for _, p := range []string{
		optoutv1connect.OptOutServiceCheckProcedure, optoutv1connect.OptOutServiceCheckBatchProcedure,
		optoutv1connect.OptOutServiceGetProcedure, optoutv1connect.OptOutServiceWatchProcedure,
		optoutv1connect.OptOutServiceReadIndexProcedure,
		optoutv1connect.CatalogServiceListPurposesProcedure, optoutv1connect.CatalogServiceGetPurposeProcedure,
		optoutv1connect.ClusterServiceStatusProcedure, optoutv1connect.ClusterServiceStateDigestProcedure,
		optoutv1connect.EnforcementServiceVerifyReceiptProcedure, optoutv1connect.EnforcementServiceShouldProcessProcedure,
		optoutv1connect.EnforcementServiceListReceiptKeysProcedure, optoutv1connect.EnforcementServiceGetFenceStatsProcedure,
		optoutv1connect.EnforcementServiceListOverridesProcedure, optoutv1connect.EnforcementServiceGetServiceScoresProcedure,
	} {
		m[p] = reader
	}
	m[optoutv1connect.OptOutServiceSetProcedure] = writer
	m[optoutv1connect.OptOutServiceSetBatchProcedure] = writer
	// A writer may open a DENY override (a kill switch) and revoke
	// overrides; an ALLOW override needs the admin role, checked by the
	// handler, which sees the effect.
	m[optoutv1connect.EnforcementServiceCreateOverrideProcedure] = writer
	m[optoutv1connect.EnforcementServiceRevokeOverrideProcedure] = writer
	// Services (or their sidecars) report what they processed.
	m[optoutv1connect.EnforcementServiceReportProcessingProcedure] = writer
	for _, p := range []string{
		optoutv1connect.AuditServiceHistoryProcedure, optoutv1connect.AuditServiceStateAtProcedure,
		optoutv1connect.AuditServiceVerifyAuditProcedure, optoutv1connect.EnforcementServiceListViolationsProcedure,
		optoutv1connect.AuditServiceListRecordsProcedure, optoutv1connect.AuditServiceListChangesProcedure,
	} {
		m[p] = auditor
	}
	for _, p := range []string{
		optoutv1connect.OptOutServiceEraseSubjectProcedure, optoutv1connect.CatalogServiceDefinePurposeProcedure,
		optoutv1connect.ClusterServiceAddMemberProcedure, optoutv1connect.ClusterServicePromoteMemberProcedure,
		optoutv1connect.ClusterServiceRemoveMemberProcedure, optoutv1connect.ClusterServiceTransferLeadershipProcedure,
		optoutv1connect.AdminServiceGetSettingsProcedure, optoutv1connect.AdminServiceSetMinSchemaVersionProcedure,
		optoutv1connect.AdminServiceSetAuditRetentionProcedure, optoutv1connect.AdminServiceSnapshotProcedure,
		optoutv1connect.AdminServiceCreateTokenProcedure, optoutv1connect.AdminServiceGrantCertificateProcedure,
		optoutv1connect.AdminServiceRevokePrincipalProcedure, optoutv1connect.AdminServiceListPrincipalsProcedure,
		optoutv1connect.EnforcementServiceRotateReceiptKeyProcedure, optoutv1connect.EnforcementServiceSetMaxOverrideDurationProcedure,
	} {
		m[p] = admin
	}
	return m
}()

func allowed(procedure string, r optoutd.Role) bool {
	for _, ok := range access[procedure] {
		if ok == r {
			return true
		}
	}
	return false
}

type tlsStateKey struct{}

// withTLSState makes the connection's TLS state (the client certificate)
// visible to the interceptors.
func withTLSState(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			r = r.WithContext(context.WithValue(r.Context(), tlsStateKey{}, r.TLS))
		}
		h.ServeHTTP(w, r)
	})
}

// authInterceptor authenticates every call (bearer token, or a verified
// client certificate whose common name was granted a role) and checks the
// role against the access table before the handler runs, so a refused call
// never touches state. With required=false a call without credentials is
// anonymous and allowed (insecure mode); a call with bad credentials is
// refused either way.
type authInterceptor struct {
	principals Principals
	required   bool
}

var errMissingCredentials = errors.New("missing credentials: send \"Authorization: Bearer <token>\" or a client certificate")

func (a authInterceptor) authenticate(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	p, ok, err := a.identify(ctx, h)
	if err != nil {
		return ctx, err
	}
	if !ok {
		if a.required {
			return ctx, connect.NewError(connect.CodeUnauthenticated, errMissingCredentials)
		}
		return ctx, nil
	}
	if !allowed(procedure, p.Role) {
		return ctx, connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("%s (role %s) may not call %s", p.Name, p.Role, procedure))
	}
	return context.WithValue(context.WithValue(ctx, callerKey{}, p.Name), roleKey{}, p.Role), nil
}

func (a authInterceptor) identify(ctx context.Context, h http.Header) (optoutd.Principal, bool, error) {
	if v := h.Get("Authorization"); v != "" {
		tok, ok := strings.CutPrefix(v, "Bearer ")
		if !ok || tok == "" || len(tok) > 512 {
			return optoutd.Principal{}, false, connect.NewError(connect.CodeUnauthenticated, errors.New(`header "Authorization": expected "Bearer <token>"`))
		}
		if a.principals == nil {
			return optoutd.Principal{}, false, connect.NewError(connect.CodeUnauthenticated, errors.New("this server does not accept tokens"))
		}
		sum := sha256.Sum256([]byte(tok))
		p, ok, err := a.lookup(ctx, func() (optoutd.Principal, bool, error) { return a.principals.LookupToken(sum[:]) })
		if err != nil {
			return p, false, err
		}
		if !ok || p.Kind != optoutd.PrincipalToken {
			return p, false, connect.NewError(connect.CodeUnauthenticated, errors.New("invalid token"))
		}
		return p, true, nil
	}
	st, _ := ctx.Value(tlsStateKey{}).(*tls.ConnectionState)
	if st == nil || len(st.VerifiedChains) == 0 || a.principals == nil {
		return optoutd.Principal{}, false, nil
	}
	cn := st.VerifiedChains[0][0].Subject.CommonName
	p, ok, err := a.lookup(ctx, func() (optoutd.Principal, bool, error) { return a.principals.LookupName(cn) })
	if err != nil {
		return p, false, err
	}
	if !ok || p.Kind != optoutd.PrincipalCertificate {
		if !a.required {
			return p, false, nil // a verified certificate with no grant: anonymous
		}
		return p, false, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("client certificate %q has no role; grant one with optoutctl cert grant", cn))
	}
	return p, true, nil
}

// lookup reads local state, and on a miss syncs with the leader and reads
// again: positives are linearizable, revocations reach a node when it
// applies them.
func (a authInterceptor) lookup(ctx context.Context, find func() (optoutd.Principal, bool, error)) (optoutd.Principal, bool, error) {
	p, ok, err := find()
	if err == nil && !ok {
		if err = a.principals.Sync(ctx); err == nil {
			p, ok, err = find()
		}
	}
	if err != nil {
		return p, false, connect.NewError(connect.CodeUnavailable, fmt.Errorf("checking credentials: %w", err))
	}
	return p, ok, nil
}

func (a authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := a.authenticate(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (a authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := a.authenticate(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
