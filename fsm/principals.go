package fsm

import (
	"bytes"
	"fmt"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

func (s *state) applyPutPrincipal(e entry, c *fsmv1.PutPrincipalCommand) (*fsmv1.Result, error) {
	if r := s.schemaTooOld(e, c.ClientSchemaVersion); r != nil {
		return r, nil
	}
	if msg := principalProblem(c); msg != "" {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "%s", msg), nil
	}
	return s.putPrincipal(e, c)
}

// putPrincipal stores a principal that passed principalProblem.
func (s *state) putPrincipal(e entry, c *fsmv1.PutPrincipalCommand) (*fsmv1.Result, error) {
	pb, ib := s.b(bucketPrincipals), s.b(bucketTokenIndex)
	var old fsmv1.StoredPrincipal
	exists, err := loadProto(pb, []byte(c.Name), &old)
	if err != nil {
		return nil, err
	}
	if exists && c.CreateOnly {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION, "principal %q already exists", c.Name), nil
	}
	if owner := ib.Get(c.TokenSha256); len(c.TokenSha256) > 0 && owner != nil && string(owner) != c.Name {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION, "that token already belongs to another principal"), nil
	}
	if exists && len(old.TokenSha256) > 0 {
		if err := ib.Delete(old.TokenSha256); err != nil {
			return nil, err
		}
	}
	p := &fsmv1.StoredPrincipal{Kind: c.Kind, Role: c.Role, TokenSha256: c.TokenSha256, CreatedAtUnixNanos: e.cmd.Stamp, Version: e.index}
	if err := put(pb, []byte(c.Name), p); err != nil {
		return nil, err
	}
	if len(c.TokenSha256) > 0 {
		if err := ib.Put(c.TokenSha256, []byte(c.Name)); err != nil {
			return nil, err
		}
	}
	return &fsmv1.Result{Index: e.index}, nil
}

func (s *state) applyDeletePrincipal(e entry, c *fsmv1.DeletePrincipalCommand) (*fsmv1.Result, error) {
	if r := s.schemaTooOld(e, c.ClientSchemaVersion); r != nil {
		return r, nil
	}
	pb := s.b(bucketPrincipals)
	var old fsmv1.StoredPrincipal
	ok, err := loadProto(pb, []byte(c.Name), &old)
	if err != nil {
		return nil, err
	}
	if !ok {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_NOT_FOUND, "principal %q does not exist", c.Name), nil
	}
	if len(old.TokenSha256) > 0 {
		if err := s.b(bucketTokenIndex).Delete(old.TokenSha256); err != nil {
			return nil, err
		}
	}
	if err := pb.Delete([]byte(c.Name)); err != nil {
		return nil, err
	}
	return &fsmv1.Result{Index: e.index}, nil
}

// PrincipalByToken finds the principal whose token hashes to sum.
func (r *Reader) PrincipalByToken(sum []byte) (optoutd.Principal, bool, error) {
	name := r.tx.Bucket(bucketTokenIndex).Get(sum)
	if name == nil {
		return optoutd.Principal{}, false, nil
	}
	p, ok, err := r.Principal(string(name))
	if err == nil && ok && !bytes.Equal(p.TokenSHA256, sum) {
		return optoutd.Principal{}, false, fmt.Errorf("%w: token index and principal %q disagree", command.ErrMalformed, name)
	}
	return p, ok, err
}

// Principal returns the principal called name.
func (r *Reader) Principal(name string) (optoutd.Principal, bool, error) {
	var sp fsmv1.StoredPrincipal
	ok, err := loadProto(r.tx.Bucket(bucketPrincipals), []byte(name), &sp)
	if err != nil || !ok {
		return optoutd.Principal{}, false, err
	}
	return command.PrincipalFromStored(name, &sp), true, nil
}

// Principals lists every principal by name.
func (r *Reader) Principals() ([]optoutd.Principal, error) {
	var out []optoutd.Principal
	err := r.tx.Bucket(bucketPrincipals).ForEach(func(k, v []byte) error {
		var sp fsmv1.StoredPrincipal
		if err := proto.Unmarshal(v, &sp); err != nil {
			return fmt.Errorf("%w: principal %q: %w", command.ErrMalformed, k, err)
		}
		out = append(out, command.PrincipalFromStored(string(k), &sp))
		return nil
	})
	return out, err
}
