package client

import (
	"context"

	"connectrpc.com/connect"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// CreateToken creates a bearer token for a role; the token is in the
// response, once.
func (c *Client) CreateToken(ctx context.Context, name string, role optoutv1.Role) (*optoutv1.CreateTokenResponse, error) {
	return unaryWrite(ctx, c, &optoutv1.CreateTokenRequest{Name: name, Role: role}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.CreateTokenRequest]) (*connect.Response[optoutv1.CreateTokenResponse], error) {
		return e.admin.CreateToken
	})
}

// GrantCertificate gives a client certificate's common name a role.
func (c *Client) GrantCertificate(ctx context.Context, cn string, role optoutv1.Role) (*optoutv1.GrantCertificateResponse, error) {
	return unaryWrite(ctx, c, &optoutv1.GrantCertificateRequest{CommonName: cn, Role: role}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.GrantCertificateRequest]) (*connect.Response[optoutv1.GrantCertificateResponse], error) {
		return e.admin.GrantCertificate
	})
}

// RevokePrincipal removes a token or certificate grant.
func (c *Client) RevokePrincipal(ctx context.Context, name string) (*optoutv1.RevokePrincipalResponse, error) {
	return unaryWrite(ctx, c, &optoutv1.RevokePrincipalRequest{Name: name}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.RevokePrincipalRequest]) (*connect.Response[optoutv1.RevokePrincipalResponse], error) {
		return e.admin.RevokePrincipal
	})
}

// ListPrincipals lists tokens and certificate grants (never the tokens).
func (c *Client) ListPrincipals(ctx context.Context) (*optoutv1.ListPrincipalsResponse, error) {
	return unary(ctx, c, retryRead, &optoutv1.ListPrincipalsRequest{}, func(e endpoint) func(context.Context, *connect.Request[optoutv1.ListPrincipalsRequest]) (*connect.Response[optoutv1.ListPrincipalsResponse], error) {
		return e.admin.ListPrincipals
	})
}
