package store

import (
	"context"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	"github.com/optoutd/optoutd/fsm"
)

// LookupToken finds the principal of a token hash in this node's state.
func (s *Store) LookupToken(sum []byte) (p optoutd.Principal, ok bool, err error) {
	err = s.node.FSM().View(func(r *fsm.Reader) error {
		p, ok, err = r.PrincipalByToken(sum)
		return err
	})
	return p, ok, err
}

// LookupName finds a principal by name in this node's state.
func (s *Store) LookupName(name string) (p optoutd.Principal, ok bool, err error) {
	err = s.node.FSM().View(func(r *fsm.Reader) error {
		p, ok, err = r.Principal(name)
		return err
	})
	return p, ok, err
}

// ListPrincipals lists principals with a linearizable read.
func (s *Store) ListPrincipals(ctx context.Context) ([]optoutd.Principal, error) {
	var out []optoutd.Principal
	_, err := s.node.Read(ctx, func(v optoutd.View) error {
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
func (s *Store) PutPrincipal(ctx context.Context, p optoutd.Principal, createOnly bool, client uint32, caller string) error {
	_, err := s.write(ctx, command.PutPrincipal(p, createOnly, client, caller))
	return err
}

// DeletePrincipal removes a principal.
func (s *Store) DeletePrincipal(ctx context.Context, name string, client uint32, caller string) error {
	_, err := s.write(ctx, command.DeletePrincipal(name, client, caller))
	return err
}

// Sync waits until this node has applied everything committed before the
// call.
func (s *Store) Sync(ctx context.Context) error {
	_, err := s.node.Read(ctx, func(optoutd.View) error { return nil })
	return err
}
