package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// Watch tuning. A page bounds one read transaction; progress tells an idle
// watcher how fresh it is.
const (
	watchPage          = 512
	watchProgressEvery = time.Second
	maxWatchPurposes   = 64
)

// Watch streams changes from this node's state: every audit entry with a
// version above the cursor, in order, then a progress message whenever the
// cursor moved (and at least every watchProgressEvery), then waits for the
// state machine to apply more. It never skips: the cursor only
// passes a version once every change up to it has been read.
func (s *optOutServer) Watch(ctx context.Context, req *connect.Request[optoutv1.WatchRequest], stream *connect.ServerStream[optoutv1.WatchResponse]) error {
	if err := noUnknownFields(req.Msg); err != nil {
		return err
	}
	filter, err := watchFilter(req.Msg.Purposes)
	if err != nil {
		return err
	}
	if err := s.watchPurposesDefined(ctx, req.Msg.Purposes); err != nil {
		return err
	}
	client := callOf(ctx).schema
	cursor := req.Msg.FromVersion
	first := true
	var (
		lastProgress time.Time // when the last progress was sent
		progressed   uint64    // what it said
	)
	for {
		var (
			changes []optoutd.AuditEntry
			applied uint64
		)
		err := s.store.ReadLocal(func(v optoutd.View) error {
			st, err := v.Settings()
			if err != nil {
				return err
			}
			if err := gate(st, client); err != nil {
				return err
			}
			// Checked on every page, not only the first: retention may
			// remove entries a slow watch has not read yet, and skipping them
			// silently would break the stream's promise.
			if cursor < st.AuditCompactedThrough {
				msg := "from_version is older than the retained history"
				if !first {
					msg = "retention removed changes after version " + uitoa(cursor) + " before this watch read them"
				}
				return &optoutd.Error{Code: optoutd.OutOfRange, CurrentVersion: st.AuditCompactedThrough,
					Message: msg + "; the oldest version a watch can start from is " + uitoa(st.AuditCompactedThrough)}
			}
			applied = v.AppliedIndex()
			changes, err = v.Changes(cursor, watchPage)
			return err
		})
		if err != nil {
			return readError(err)
		}
		first = false
		full := len(changes) >= watchPage // a page holds whole versions, so it may hold more
		for len(changes) > 0 {
			n := 1 // the changes at one version: a page holds whole versions
			for n < len(changes) && changes[n].Version == changes[0].Version {
				n++
			}
			if err := sendVersion(stream, client, changes[:n], filter); err != nil {
				return err
			}
			cursor, changes = changes[0].Version, changes[n:]
		}
		if full {
			continue // more to read before this node's applied index
		}
		// Every change up to applied has been sent (or filtered out).
		cursor = max(cursor, applied)
		// Progress goes out as soon as the cursor passed what the last one
		// said, whether or not a change was sent: entries that are no
		// audit change (a catalog or settings change, a leader's no-op)
		// and filtered-out changes move it too, and a client cache waits
		// for progress at or above a read index before it answers. An
		// idle watch still hears from the node every watchProgressEvery.
		if lastProgress.IsZero() || cursor > progressed || time.Since(lastProgress) >= watchProgressEvery {
			if err := stream.Send(&optoutv1.WatchResponse{Event: &optoutv1.WatchResponse_Progress{Progress: &optoutv1.Progress{AppliedIndex: cursor}}}); err != nil {
				return err
			}
			lastProgress, progressed = time.Now(), cursor
		}
		wctx, cancel := context.WithTimeout(ctx, watchProgressEvery)
		err = s.store.WaitApplied(wctx, cursor+1)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err() // the watcher went away
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			return readError(err)
		}
	}
}

// watchPurposesDefined refuses a purpose the catalog does not define with
// not_found, as Check does: a watch on a typo would wait forever for a
// change that can never come. A purpose missing from this node's state is
// confirmed with a linearizable read first (the node may not have applied
// its definition yet), so a watch of defined purposes never waits for a
// quorum.
func (s *optOutServer) watchPurposesDefined(ctx context.Context, purposes []string) error {
	if len(purposes) == 0 {
		return nil
	}
	defined := func(v optoutd.View) error {
		for i, p := range purposes {
			if p == optoutd.AllPurposes {
				continue // always there: a subject-wide opt-out
			}
			if _, err := v.Purpose(p); err != nil {
				return prefixed(fmt.Sprintf("purposes[%d]: ", i), err)
			}
		}
		return nil
	}
	err := s.store.ReadLocal(defined)
	if optoutd.ErrorCode(err) == optoutd.NotFound {
		_, _, err = read(ctx, s.store, defined)
	}
	return readError(err)
}

func watchFilter(purposes []string) (func(string) bool, error) {
	if len(purposes) > maxWatchPurposes {
		return nil, invalidf("purposes: %d entries, at most %d", len(purposes), maxWatchPurposes)
	}
	if len(purposes) == 0 {
		return func(string) bool { return true }, nil
	}
	set := map[string]bool{optoutd.AllPurposes: true}
	for i, p := range purposes {
		if err := optoutd.ValidatePurpose(p); err != nil {
			return nil, invalidf("purposes[%d]: %s", i, optoutd.ErrorMessage(err))
		}
		set[p] = true
	}
	return func(p string) bool { return set[p] }, nil
}

// groupSchema is the first client schema version that receives a
// ChangeGroup. An older client knows one change per version and would take
// a batch's second change for a protocol error (or, resuming from the
// version, skip the rest), so its watch fails instead, naming the fix.
const groupSchema = 4

// sendVersion sends the changes of one version that pass the filter: one
// change as a change, several (a SetBatch) as one ChangeGroup, so a stream
// that breaks never leaves a version half delivered.
func sendVersion(stream *connect.ServerStream[optoutv1.WatchResponse], client uint32, changes []optoutd.AuditEntry, filter func(string) bool) error {
	var out []*optoutv1.AuditEntry
	for _, c := range changes {
		if filter(c.Purpose) {
			out = append(out, auditToProto(c))
		}
	}
	switch {
	case len(out) == 0:
		return nil
	case len(out) == 1:
		return stream.Send(&optoutv1.WatchResponse{Event: &optoutv1.WatchResponse_Change{Change: out[0]}})
	case client < groupSchema:
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(
			"version %d holds %d changes of one SetBatch, which only clients of schema version %d or newer can receive (this client declares %d); upgrade the client",
			changes[0].Version, len(out), groupSchema, client))
	}
	return stream.Send(&optoutv1.WatchResponse{Event: &optoutv1.WatchResponse_Changes{Changes: &optoutv1.ChangeGroup{Entries: out}}})
}
