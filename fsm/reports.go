package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// Reports. The API judges a ReportProcessing batch against history and
// proposes the verdicts (RecordReportsCommand); apply only stores them, so
// a violation is one deterministic record on every replica. Violations
// are keyed by id (the report's index << 16 | its place in the batch),
// indexed by service, and each service's counts are summed per hour of
// the leader's stamp for the scores.

// maxBatchViolations is how many violations one entry may carry: the
// batch limit, since each report has at most one.
const maxBatchViolations = optoutd.MaxReportBatch

func violationID(index uint64, report uint32) uint64 { return index<<16 | uint64(report) }

func serviceKey(service string, n uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(service), 0), n)
}

func (s *state) applyRecordReports(e entry, c *fsmv1.RecordReportsCommand) (*fsmv1.Result, error) {
	if r := s.schemaTooOld(e, c.ClientSchemaVersion); r != nil {
		return r, nil
	}
	switch {
	case len(c.Violations) > maxBatchViolations || uint32(len(c.Violations)) > c.Reports:
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "%d violations in a batch of %d reports", len(c.Violations), c.Reports), nil
	case c.Service == "" || bytes.IndexByte([]byte(c.Service), 0) >= 0:
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "service must be set and hold no NUL"), nil
	}
	if msg := keyProblem("service", serviceKey(c.Service, 0)); msg != "" {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "%s", msg), nil
	}
	for i, v := range c.Violations {
		if v.Report >= c.Reports || (i > 0 && v.Report <= c.Violations[i-1].Report) {
			return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "violation %d names report %d of %d out of order", i, v.Report, c.Reports), nil
		}
	}
	for _, v := range c.Violations {
		id := violationID(e.index, v.Report)
		sv := &fsmv1.StoredViolation{Service: c.Service, Violation: v, ReportedAtUnixNanos: e.cmd.Stamp, ReportVersion: e.index}
		if err := put(s.b(bucketViolations), u64(id), sv); err != nil {
			return nil, err
		}
		if err := s.b(bucketViolationsByService).Put(serviceKey(c.Service, id), nil); err != nil {
			return nil, err
		}
	}
	hour := uint64(e.cmd.Stamp / int64(time.Hour))
	key := serviceKey(c.Service, hour)
	var st fsmv1.ServiceStats
	if _, err := loadProto(s.b(bucketServiceStats), key, &st); err != nil {
		return nil, err
	}
	st.Reports += uint64(c.Reports)
	st.Violations += uint64(len(c.Violations))
	st.WithoutReceipt += uint64(c.WithoutReceipt)
	if err := put(s.b(bucketServiceStats), key, &st); err != nil {
		return nil, err
	}
	return &fsmv1.Result{Index: e.index}, nil
}

// ListViolations returns violations newest first (see optoutd.View).
func (r *Reader) ListViolations(service, purpose string, subjectHash []byte, before uint64, limit int) ([]optoutd.Violation, error) {
	var out []optoutd.Violation
	take := func(id uint64) (bool, error) {
		var sv fsmv1.StoredViolation
		ok, err := loadProto(r.tx.Bucket(bucketViolations), u64(id), &sv)
		if err != nil || !ok {
			return false, err
		}
		v := command.ViolationFromStored(id, &sv)
		if (purpose == "" || v.Purpose == purpose) && (subjectHash == nil || bytes.Equal(v.SubjectHash, subjectHash)) {
			out = append(out, v)
		}
		return len(out) < limit, nil
	}
	if service != "" {
		prefix := append([]byte(service), 0)
		c := r.tx.Bucket(bucketViolationsByService).Cursor()
		bound := before
		if bound == 0 {
			bound = ^uint64(0) // ids never reach it
		}
		// Seek lands at or after the bound; one step back is the newest
		// id below it (or the bucket's last key if Seek ran off the end).
		k, _ := c.Seek(serviceKey(service, bound))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, _ = c.Prev() {
			more, err := take(readU64(k[len(prefix):]))
			if err != nil || !more {
				return out, err
			}
		}
		return out, nil
	}
	c := r.tx.Bucket(bucketViolations).Cursor()
	k, _ := c.Last()
	if before != 0 {
		if k, _ = c.Seek(u64(before)); k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
	}
	for ; k != nil; k, _ = c.Prev() {
		more, err := take(readU64(k))
		if err != nil || !more {
			return out, err
		}
	}
	return out, nil
}

// ServiceScores sums the hourly counts from from to to.
func (r *Reader) ServiceScores(service string, from, to time.Time) ([]optoutd.ServiceScore, error) {
	lo, hi := uint64(from.UnixNano()/int64(time.Hour)), uint64(to.UnixNano()/int64(time.Hour))
	var out []optoutd.ServiceScore
	c := r.tx.Bucket(bucketServiceStats).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) < 9 || k[len(k)-9] != 0 {
			return nil, fmt.Errorf("%w: service stats key %x", command.ErrMalformed, k)
		}
		name, hour := string(k[:len(k)-9]), readU64(k[len(k)-8:])
		if (service != "" && name != service) || hour < lo || hour > hi {
			continue
		}
		var st fsmv1.ServiceStats
		if err := proto.Unmarshal(v, &st); err != nil {
			return nil, fmt.Errorf("%w: service stats %x: %w", command.ErrMalformed, k, err)
		}
		if len(out) == 0 || out[len(out)-1].Service != name {
			out = append(out, optoutd.ServiceScore{Service: name})
		}
		sc := &out[len(out)-1]
		sc.Reports += st.Reports
		sc.Violations += st.Violations
		sc.WithoutReceipt += st.WithoutReceipt
	}
	return out, nil
}
