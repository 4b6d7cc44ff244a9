package importer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
)

// Writer is what Run needs of a client; *client.Client is one.
type Writer interface {
	SetBatch(ctx context.Context, req *optoutv1.SetBatchRequest) (*optoutv1.SetBatchResponse, error)
}

// Source is where Run reads rows; *Reader is one.
type Source interface {
	Next() (Row, error)
}

// Limits of Config.
const (
	DefaultBatchSize   = 500
	DefaultConcurrency = 4
	MaxConcurrency     = 64
	DefaultAttempts    = 5
)

// Config tunes Run.
type Config struct {
	// ImportID names this import in its batches' idempotency keys: the same
	// file imported again under the same ID, BatchSize and Concurrency
	// makes the same batches with the same keys, so batches that were
	// already applied are replayed, not written again (within the cluster's
	// idempotency window). Required.
	ImportID string
	// BatchSize is the writes per SetBatch, 1..optoutd.MaxBatchSets
	// (0: DefaultBatchSize).
	BatchSize int
	// Concurrency is the batches in flight, 1..MaxConcurrency
	// (0: DefaultConcurrency). Records are spread over that many lanes by
	// (subject, purpose), each lane sending its batches in file order, so
	// the lines of one record apply in file order.
	Concurrency int
	// DryRun asks the cluster what each batch would do and writes nothing.
	DryRun bool
	// Strict stops at the first refused write (the batches in flight
	// finish); Run then returns ErrStopped.
	Strict bool
	// Attempts bounds the sends of one batch whose outcome stayed unknown
	// (the client's own retries come on top); 0: DefaultAttempts.
	Attempts int
	// BatchTimeout is the deadline of one send (0: none beyond ctx).
	BatchTimeout time.Duration
	// OnProblem receives each bad line and refused write, one at a time.
	OnProblem func(Problem)
	// OnProgress receives the running totals after each batch, one at a
	// time.
	OnProgress func(Summary)
}

// Problem is a line that was bad or whose write was refused.
type Problem struct {
	Line      int    `json:"line"`
	SubjectID string `json:"subject_id,omitempty"`
	Purpose   string `json:"purpose,omitempty"`
	// Code is "bad_line" for a line that could not be read or validated, or
	// the Connect code name of the refusal (e.g. "failed_precondition").
	Code           string `json:"code"`
	Message        string `json:"message"`
	CurrentVersion uint64 `json:"current_version,omitempty"`
}

// Summary is what an import did (or, in a dry run, would do).
type Summary struct {
	ImportID string `json:"import_id"`
	DryRun   bool   `json:"dry_run"`
	// Lines is the rows read, bad ones included (not blank lines or the
	// header).
	Lines    int   `json:"lines"`
	BadLines int   `json:"bad_lines"`
	Bytes    int64 `json:"bytes"`
	// Written is the records (that would be) written: New ones, Changed
	// ones (another state), Unchanged ones (written again with the state
	// they had), and Replayed ones (in batches an earlier run applied).
	Written   int `json:"written"`
	New       int `json:"new"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	Replayed  int `json:"replayed"`
	// Refused is the writes a rule refused, by code.
	Refused       int            `json:"refused"`
	RefusedByCode map[string]int `json:"refused_by_code,omitempty"`
	Batches       int            `json:"batches"`
	// FirstVersion and LastVersion bound the batches' versions (a dry run:
	// the read indexes it was evaluated at).
	FirstVersion     uint64  `json:"first_version,omitempty"`
	LastVersion      uint64  `json:"last_version,omitempty"`
	ElapsedSeconds   float64 `json:"elapsed_seconds"`
	RecordsPerSecond float64 `json:"records_per_second"`
}

// ErrStopped is returned by a Strict run that met a refusal.
var ErrStopped = errors.New("importer: stopped at the first refused write (--strict)")

// Problems reports whether anything was bad or refused.
func (s Summary) Problems() bool { return s.BadLines > 0 || s.Refused > 0 }

// batch is one SetBatch being built: its writes and their lines.
type batch struct {
	lane, seq int
	sets      []optoutd.SetRequest
	lines     []int
	keys      map[optoutd.Key]bool
}

type run struct {
	cfg     Config
	w       Writer
	start   time.Time
	mu      sync.Mutex // guards sum and the callbacks
	sum     Summary
	bytes   func() int64
	stopped atomic.Bool
}

// Run reads every row of src and writes the good ones through w in
// batches. Bad lines and refused writes go to OnProblem and the summary
// and never stop the others (unless Strict). An error is returned when a
// batch could not be applied (its outcome stayed unknown, or the cluster
// refused it whole) or src failed; the summary then covers what was done,
// and running the same import again resumes it.
func Run(ctx context.Context, src Source, w Writer, cfg Config) (Summary, error) {
	if cfg.ImportID == "" {
		return Summary{}, errors.New("importer: ImportID is required")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > optoutd.MaxBatchSets {
		return Summary{}, fmt.Errorf("importer: batch size %d is not in 1..%d", cfg.BatchSize, optoutd.MaxBatchSets)
	}
	if cfg.Concurrency < 1 || cfg.Concurrency > MaxConcurrency {
		return Summary{}, fmt.Errorf("importer: concurrency %d is not in 1..%d", cfg.Concurrency, MaxConcurrency)
	}
	r := &run{cfg: cfg, w: w, start: time.Now(), sum: Summary{ImportID: cfg.ImportID, DryRun: cfg.DryRun, RefusedByCode: map[string]int{}}}
	if b, ok := src.(interface{ BytesRead() int64 }); ok {
		r.bytes = b.BytesRead
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lanes := make([]chan Row, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan Row, cfg.BatchSize)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.lane(ctx, i, lanes[i]); err != nil {
				cancel(err)
			}
		}()
	}
	readErr := r.feed(ctx, src, lanes)
	for _, l := range lanes {
		close(l)
	}
	wg.Wait()
	r.mu.Lock()
	sum := r.finish()
	r.mu.Unlock()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return sum, err
	}
	if readErr != nil {
		return sum, readErr
	}
	if err := ctx.Err(); err != nil {
		return sum, err
	}
	if r.stopped.Load() {
		return sum, ErrStopped
	}
	return sum, nil
}

// feed reads rows and hands the good ones to their lanes.
func (r *run) feed(ctx context.Context, src Source, lanes []chan Row) error {
	for !r.stopped.Load() {
		row, err := src.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.sum.Lines++
		if row.Err != nil {
			r.sum.BadLines++
			r.problem(Problem{Line: row.Line, Code: "bad_line", Message: row.Err.Error()})
		}
		r.mu.Unlock()
		if row.Err != nil {
			if r.cfg.Strict {
				r.stopped.Store(true)
			}
			continue
		}
		select {
		case lanes[laneOf(row.Set.Key, len(lanes))] <- row:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

func laneOf(k optoutd.Key, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(k.SubjectID))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(k.Purpose))
	return int(h.Sum32() % uint32(n))
}

// lane builds and sends the batches of one lane, in order.
func (r *run) lane(ctx context.Context, lane int, rows <-chan Row) error {
	b := r.newBatch(lane, 0)
	for row := range rows {
		if r.stopped.Load() || ctx.Err() != nil {
			continue // drain
		}
		if b.keys[row.Set.Key] {
			// A record changes at most once per batch: send what is before
			// this line first, so the file's order holds.
			if err := r.send(ctx, b); err != nil {
				return err
			}
			b = r.newBatch(lane, b.seq+1)
		}
		b.sets = append(b.sets, row.Set)
		b.lines = append(b.lines, row.Line)
		b.keys[row.Set.Key] = true
		if len(b.sets) == r.cfg.BatchSize {
			if err := r.send(ctx, b); err != nil {
				return err
			}
			b = r.newBatch(lane, b.seq+1)
		}
	}
	if len(b.sets) > 0 && !r.stopped.Load() && ctx.Err() == nil {
		return r.send(ctx, b)
	}
	return nil
}

func (r *run) newBatch(lane, seq int) *batch {
	return &batch{lane: lane, seq: seq, keys: make(map[optoutd.Key]bool, r.cfg.BatchSize)}
}

// send writes one batch, again under the same key while its outcome is
// unknown, and accounts for its results.
func (r *run) send(ctx context.Context, b *batch) error {
	req := &optoutv1.SetBatchRequest{Sets: make([]*optoutv1.SetRequest, len(b.sets)), DryRun: r.cfg.DryRun}
	for i, s := range b.sets {
		req.Sets[i] = &optoutv1.SetRequest{SubjectId: s.Key.SubjectID, Purpose: s.Key.Purpose, State: optoutv1.State(s.State),
			Source: s.Source, Reason: s.Reason, ExpectedVersion: s.ExpectedVersion}
	}
	if !r.cfg.DryRun {
		req.IdempotencyKey = batchKey(r.cfg.ImportID, b)
	}
	var (
		res *optoutv1.SetBatchResponse
		err error
	)
	for attempt := 1; ; attempt++ {
		res, err = r.sendOnce(ctx, req)
		if err == nil || r.cfg.DryRun || !client.IsOutcomeUnknown(err) || attempt >= r.cfg.Attempts || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		lines := fmt.Sprintf("lines %d..%d", b.lines[0], b.lines[len(b.lines)-1])
		if len(b.lines) == 1 {
			lines = fmt.Sprintf("line %d", b.lines[0])
		}
		if !r.cfg.DryRun && client.IsOutcomeUnknown(err) {
			return fmt.Errorf("batch of %d writes (%s of lane %d): outcome unknown after %d attempts: %w; "+
				"run the same import again to resume (batches already applied are replayed, not written twice)",
				len(b.sets), lines, b.lane, r.cfg.Attempts, err)
		}
		return fmt.Errorf("batch of %d writes (%s of lane %d) not applied: %w", len(b.sets), lines, b.lane, err)
	}
	if len(res.Results) != len(b.sets) {
		return fmt.Errorf("batch (lane %d): %d results for %d writes", b.lane, len(res.Results), len(b.sets))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.account(b, res)
	if r.cfg.OnProgress != nil {
		r.cfg.OnProgress(r.finish())
	}
	return nil
}

func (r *run) sendOnce(ctx context.Context, req *optoutv1.SetBatchRequest) (*optoutv1.SetBatchResponse, error) {
	if r.cfg.BatchTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.BatchTimeout)
		defer cancel()
	}
	return r.w.SetBatch(ctx, req)
}

// account adds a batch's results to the summary; r.mu is held.
func (r *run) account(b *batch, res *optoutv1.SetBatchResponse) {
	s := &r.sum
	s.Batches++
	if v := res.Version; v != 0 {
		if s.FirstVersion == 0 || v < s.FirstVersion {
			s.FirstVersion = v
		}
		s.LastVersion = max(s.LastVersion, v)
	}
	for i, it := range res.Results {
		set := b.sets[i]
		if it.ErrorCode != "" {
			s.Refused++
			s.RefusedByCode[it.ErrorCode]++
			r.problem(Problem{Line: b.lines[i], SubjectID: set.Key.SubjectID, Purpose: set.Key.Purpose,
				Code: it.ErrorCode, Message: it.ErrorMessage, CurrentVersion: it.CurrentVersion})
			if r.cfg.Strict {
				r.stopped.Store(true)
			}
			continue
		}
		s.Written++
		switch {
		case res.Replayed:
			s.Replayed++
		case it.PreviousVersion == 0:
			s.New++
		case optoutd.State(it.PreviousState) == set.State:
			s.Unchanged++
		default:
			s.Changed++
		}
	}
}

// problem reports one problem; r.mu is held.
func (r *run) problem(p Problem) {
	if r.cfg.OnProblem != nil {
		r.cfg.OnProblem(p)
	}
}

// finish fills the derived totals; r.mu is held.
func (r *run) finish() Summary {
	s := r.sum
	s.RefusedByCode = make(map[string]int, len(r.sum.RefusedByCode))
	for k, v := range r.sum.RefusedByCode {
		s.RefusedByCode[k] = v
	}
	if r.bytes != nil {
		s.Bytes = r.bytes()
	}
	el := time.Since(r.start)
	s.ElapsedSeconds = el.Seconds()
	if el > 0 {
		s.RecordsPerSecond = float64(s.Written+s.Refused) / el.Seconds()
	}
	return s
}

// batchKey is a batch's idempotency key: a hash of the import, the batch's
// place (lane and sequence) and every write with its line, so the same
// file imported again under the same settings makes the same keys.
func batchKey(importID string, b *batch) string {
	h := sha256.New()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field("optoutd-import-v1")
	field(importID)
	field(fmt.Sprintf("%d/%d", b.lane, b.seq))
	for i, s := range b.sets {
		ev := "-"
		if s.ExpectedVersion != nil {
			ev = fmt.Sprint(*s.ExpectedVersion)
		}
		field(fmt.Sprintf("%d", b.lines[i]))
		field(s.Key.SubjectID)
		field(s.Key.Purpose)
		field(fmt.Sprintf("%d/%s", s.State, ev))
		field(s.Source)
		field(s.Reason)
	}
	return "imp-" + hex.EncodeToString(h.Sum(nil))[:40]
}
