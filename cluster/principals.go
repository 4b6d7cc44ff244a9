package cluster

import (
	"context"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	"github.com/optoutd/optoutd/fsm"
)

// LookupToken finds the principal of a token hash in this node's state.
func (n *Node) LookupToken(sum []byte) (p optoutd.Principal, ok bool, err error) {
	err = n.fsm.View(func(r *fsm.Reader) error {
		p, ok, err = r.PrincipalByToken(sum)
		return err
	})
	return p, ok, err
}

// LookupName finds a principal by name in this node's state.
func (n *Node) LookupName(name string) (p optoutd.Principal, ok bool, err error) {
	err = n.fsm.View(func(r *fsm.Reader) error {
		p, ok, err = r.Principal(name)
		return err
	})
	return p, ok, err
}

// ListPrincipals lists principals with a linearizable read.
func (n *Node) ListPrincipals(ctx context.Context) ([]optoutd.Principal, error) {
	var out []optoutd.Principal
	_, err := n.Read(ctx, func(v optoutd.View) error {
		r, ok := v.(*fsm.Reader)
		if !ok {
			return optoutd.Errorf(optoutd.Internal, "unexpected view %T", v)
		}
		var err error
		out, err = r.Principals()
		return err
	})
	return out, err
}

// PutPrincipal creates (or, unless createOnly, replaces) a principal.
func (n *Node) PutPrincipal(ctx context.Context, p optoutd.Principal, createOnly bool, client uint32, caller string) error {
	_, err := n.write(ctx, command.PutPrincipal(p, createOnly, client, caller))
	return err
}

// DeletePrincipal removes a principal.
func (n *Node) DeletePrincipal(ctx context.Context, name string, client uint32, caller string) error {
	_, err := n.write(ctx, command.DeletePrincipal(name, client, caller))
	return err
}

// Sync waits until this node has applied everything committed before the
// call.
func (n *Node) Sync(ctx context.Context) error {
	_, err := n.Read(ctx, func(optoutd.View) error { return nil })
	return err
}
