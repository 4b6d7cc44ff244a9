package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var errNoPrincipals = errors.New("principals are not enabled on this server")

// tokenPrefix makes optoutd tokens recognisable to secret scanners.
const tokenPrefix = "optout_"

func newToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	tok := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(tok))
	return tok, sum[:], nil
}

func principalToProto(p optoutd.Principal) *optoutv1.Principal {
	out := &optoutv1.Principal{Name: p.Name, Kind: optoutv1.PrincipalKind(p.Kind), Role: optoutv1.Role(p.Role)}
	if !p.CreatedAt.IsZero() { // the leader stamps it; a create answer has none yet
		out.CreatedAt = timestamppb.New(p.CreatedAt)
	}
	return out
}

func principalArgs(name string, role optoutv1.Role) (optoutd.Role, error) {
	if !optoutd.PrincipalNameRE.MatchString(name) {
		return 0, invalidf("name: %q must match %s", truncateHeader(name), optoutd.PrincipalNameRE)
	}
	if role < optoutv1.Role_ROLE_READER || role > optoutv1.Role_ROLE_ADMIN {
		return 0, invalidf("role: must be ROLE_READER, ROLE_WRITER, ROLE_AUDITOR or ROLE_ADMIN")
	}
	return optoutd.Role(role), nil
}

func (s *adminServer) CreateToken(ctx context.Context, req *connect.Request[optoutv1.CreateTokenRequest]) (*connect.Response[optoutv1.CreateTokenResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	if s.principals == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errNoPrincipals)
	}
	role, err := principalArgs(req.Msg.Name, req.Msg.Role)
	if err != nil {
		return nil, rejectedWrite(err)
	}
	tok, sum, err := newToken()
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	p := optoutd.Principal{Name: req.Msg.Name, Kind: optoutd.PrincipalToken, Role: role, TokenSHA256: sum}
	c := callOf(ctx)
	if err := s.principals.PutPrincipal(ctx, p, true, c.schema, c.caller); err != nil {
		return nil, writeError(ctx, err)
	}
	return connect.NewResponse(&optoutv1.CreateTokenResponse{Principal: principalToProto(p), Token: tok}), nil
}

func (s *adminServer) GrantCertificate(ctx context.Context, req *connect.Request[optoutv1.GrantCertificateRequest]) (*connect.Response[optoutv1.GrantCertificateResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	if s.principals == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errNoPrincipals)
	}
	role, err := principalArgs(req.Msg.CommonName, req.Msg.Role)
	if err != nil {
		return nil, rejectedWrite(err)
	}
	p := optoutd.Principal{Name: req.Msg.CommonName, Kind: optoutd.PrincipalCertificate, Role: role}
	c := callOf(ctx)
	if err := s.principals.PutPrincipal(ctx, p, false, c.schema, c.caller); err != nil {
		return nil, writeError(ctx, err)
	}
	return connect.NewResponse(&optoutv1.GrantCertificateResponse{Principal: principalToProto(p)}), nil
}

func (s *adminServer) RevokePrincipal(ctx context.Context, req *connect.Request[optoutv1.RevokePrincipalRequest]) (*connect.Response[optoutv1.RevokePrincipalResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, rejectedWrite(err)
	}
	if s.principals == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errNoPrincipals)
	}
	if !optoutd.PrincipalNameRE.MatchString(req.Msg.Name) {
		return nil, rejectedWrite(invalidf("name: %q must match %s", truncateHeader(req.Msg.Name), optoutd.PrincipalNameRE))
	}
	c := callOf(ctx)
	if err := s.principals.DeletePrincipal(ctx, req.Msg.Name, c.schema, c.caller); err != nil {
		return nil, writeError(ctx, err)
	}
	return connect.NewResponse(&optoutv1.RevokePrincipalResponse{}), nil
}

func (s *adminServer) ListPrincipals(ctx context.Context, req *connect.Request[optoutv1.ListPrincipalsRequest]) (*connect.Response[optoutv1.ListPrincipalsResponse], error) {
	if err := noUnknownFields(req.Msg); err != nil {
		return nil, err
	}
	if s.principals == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errNoPrincipals)
	}
	ps, err := s.principals.ListPrincipals(ctx)
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.ListPrincipalsResponse{}
	for _, p := range ps {
		out.Principals = append(out.Principals, principalToProto(p))
	}
	return connect.NewResponse(out), nil
}
