package api

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// The export reads: every record, and the whole history, a page at a time.

func (s *auditServer) ListRecords(ctx context.Context, req *connect.Request[optoutv1.ListRecordsRequest]) (*connect.Response[optoutv1.ListRecordsResponse], error) {
	m := req.Msg
	if err := noUnknownFields(m); err != nil {
		return nil, err
	}
	if m.Purpose != "" {
		if err := optoutd.ValidatePurpose(m.Purpose); err != nil {
			return nil, invalidf("%s", optoutd.ErrorMessage(err))
		}
	}
	size, err := pageSize("page_size", m.PageSize)
	if err != nil {
		return nil, err
	}
	var after optoutd.Key
	if m.PageToken != "" {
		if after, err = recordToken(m.PageToken); err != nil {
			return nil, err
		}
	}
	var (
		recs []optoutd.Record
		next optoutd.Key
	)
	idx, cat, err := read(ctx, s.store, func(v optoutd.View) (err error) {
		recs, next, err = v.Records(after, m.Purpose, size)
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.ListRecordsResponse{ReadIndex: idx, Records: make([]*optoutv1.Record, len(recs))}
	for i, r := range recs {
		out.Records[i] = recordToProto(r)
	}
	if next != (optoutd.Key{}) {
		out.NextPageToken = recordTokenOf(next)
	}
	return withCatalog(out, cat), nil
}

// recordTokenOf is a page token naming the last key a page scanned:
// base64url of "len(subject):subject" and the purpose.
func recordTokenOf(k optoutd.Key) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(len(k.SubjectID)) + ":" + k.SubjectID + k.Purpose))
}

func recordToken(tok string) (optoutd.Key, error) {
	bad := invalidf("page_token: %q is not a token from a previous response", truncateHeader(tok))
	if len(tok) > 1024 {
		return optoutd.Key{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return optoutd.Key{}, bad
	}
	n, rest, ok := strings.Cut(string(raw), ":")
	l, err := strconv.Atoi(n)
	if !ok || err != nil || l < 1 || l > len(rest) {
		return optoutd.Key{}, bad
	}
	k := optoutd.Key{SubjectID: rest[:l], Purpose: rest[l:]}
	if optoutd.ValidateKey(k) != nil {
		return optoutd.Key{}, bad
	}
	return k, nil
}

func (s *auditServer) ListChanges(ctx context.Context, req *connect.Request[optoutv1.ListChangesRequest]) (*connect.Response[optoutv1.ListChangesResponse], error) {
	m := req.Msg
	if err := noUnknownFields(m); err != nil {
		return nil, err
	}
	size, err := pageSize("page_size", m.PageSize)
	if err != nil {
		return nil, err
	}
	var (
		entries   []optoutd.AuditEntry
		compacted uint64
	)
	idx, cat, err := read(ctx, s.store, func(v optoutd.View) (err error) {
		st, err := v.Settings()
		if err != nil {
			return err
		}
		compacted = st.AuditCompactedThrough
		entries, err = v.Changes(m.AfterVersion, size)
		return err
	})
	if err != nil {
		return nil, readError(err)
	}
	out := &optoutv1.ListChangesResponse{ReadIndex: idx, CompactedThrough: compacted, Entries: make([]*optoutv1.AuditEntry, len(entries))}
	for i, e := range entries {
		out.Entries[i] = auditToProto(e)
	}
	if len(entries) >= size { // a page never ends inside a version, so more may follow
		out.NextAfterVersion = entries[len(entries)-1].Version
	}
	return withCatalog(out, cat), nil
}
