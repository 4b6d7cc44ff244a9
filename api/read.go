package api

import (
	"context"
	"strconv"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api/wire"
)

// read runs fn in a linearizable read, after the schema-version gate, and
// returns the index of the state the answer was read from and the catalog
// version it used. That index is the view's applied index, at or above the
// read index the round confirmed: the answer is exactly the state at it,
// which is what a receipt, a fence or a report's processed_version must
// name (a change applied between the round and the read is in the answer,
// and so below the index given).
func read(ctx context.Context, st Store, fn func(optoutd.View) error) (idx, catalog uint64, err error) {
	client := callOf(ctx).schema
	_, err = st.Read(ctx, func(v optoutd.View) error {
		idx = v.AppliedIndex()
		s, err := v.Settings()
		if err != nil {
			return err
		}
		if err := gate(s, client); err != nil {
			return err
		}
		catalog = s.CatalogVersion
		return fn(v)
	})
	return idx, catalog, err
}

// withCatalog stamps the catalog version header on a response.
func withCatalog[T any](m *T, catalog uint64) *connect.Response[T] {
	r := connect.NewResponse(m)
	r.Header().Set(wire.HeaderCatalogVersion, strconv.FormatUint(catalog, 10))
	return r
}
