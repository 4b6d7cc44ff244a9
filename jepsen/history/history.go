package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Type is the kind of an operation.
type Type string

const (
	// Get reads one register key with OptOutService.Get (sees the tag).
	Get Type = "get"
	// Check reads one register key with OptOutService.Check (sees state and
	// version, not the tag).
	Check Type = "check"
	// Write is a blind Set of a register key with a unique tag.
	Write Type = "write"
	// CAS is a Set with expected_version.
	CAS Type = "cas"
	// Add is a blind opt-out of a fresh key of the set workload.
	Add Type = "add"
)

// IsRead reports whether t is a request without side effects on the
// state (a fence counts, though the answering node counts it).
func (t Type) IsRead() bool {
	switch t {
	case Get, Check, Gate, Fence, StateRead, ReadIndex, ListViolations:
		return true
	}
	return false
}

// IsWrite reports whether t goes through the log.
func (t Type) IsWrite() bool {
	switch t {
	case Write, CAS, Add, OptOut, OptIn, Override, Report:
		return true
	}
	return false
}

// Outcome is what the client learned about an operation.
type Outcome string

const (
	// OK: the request succeeded.
	OK Outcome = "ok"
	// NotFound: a read found no record (a definite answer).
	NotFound Outcome = "not_found"
	// Mismatch: a compare-and-set found another version; nothing changed.
	Mismatch Outcome = "mismatch"
	// NotApplied: a write certainly did not apply (unavailable +
	// OUTCOME_NOT_APPLIED, or a refused dial).
	NotApplied Outcome = "not_applied"
	// Unknown: a write may or may not have applied.
	Unknown Outcome = "unknown"
	// Fail: a read failed; it tells nothing.
	Fail Outcome = "fail"
)

// Op is one client operation.
type Op struct {
	Index   int    `json:"index"`
	Process int    `json:"process"` // logical process; a new one after an unknown outcome
	Worker  int    `json:"worker"`
	Node    string `json:"node"`
	Type    Type   `json:"type"`
	Key     string `json:"key"`
	// Tag is the tag a write wrote, or the tag a Get saw.
	Tag string `json:"tag,omitempty"`
	// State is the state written or seen: "opted_out", "opted_in", or ""
	// (no record).
	State string `json:"state,omitempty"`
	// Expected is a CAS's expected_version.
	Expected *uint64 `json:"expected,omitempty"`
	// Version is the version a read saw, an OK write got, or a Mismatch
	// reported as current.
	Version uint64  `json:"version,omitempty"`
	Call    int64   `json:"call"`   // ns since the run started
	Return  int64   `json:"return"` // ns since the run started
	Outcome Outcome `json:"outcome"`
	// Final marks the reads done on every node after healing.
	Final bool   `json:"final,omitempty"`
	Code  string `json:"code,omitempty"` // the Connect code of a failure
	Error string `json:"error,omitempty"`
	// Enf is set on the enforcement workload's ops.
	Enf *Enforce `json:"enf,omitempty"`
}

// Latency is Return-Call.
func (o Op) Latency() time.Duration { return time.Duration(o.Return - o.Call) }

// Recorder collects ops from many goroutines on one clock.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewRecorder starts the clock.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Start is the wall time of the clock's zero.
func (r *Recorder) Start() time.Time { return r.start }

// Now is the time on the run clock, in ns.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Add appends op, numbering it, and returns its index.
func (r *Recorder) Add(op Op) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Index = len(r.ops)
	r.ops = append(r.ops, op)
	return op.Index
}

// Len is the number of ops recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// Ops returns a copy of the ops, in recording order.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Since returns a copy of the ops recorded from index i on.
func (r *Recorder) Since(i int) []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= len(r.ops) {
		return nil
	}
	return append([]Op(nil), r.ops[i:]...)
}

// WriteJSONL writes ops, one JSON object a line, sorted by call time.
func WriteJSONL(w io.Writer, ops []Op) error {
	sorted := append([]Op(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, op := range sorted {
		if err := enc.Encode(op); err != nil {
			return fmt.Errorf("history: encode op %d: %w", op.Index, err)
		}
	}
	return bw.Flush()
}

// WriteFile writes ops to path as JSONL.
func WriteFile(path string, ops []Op) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if err := WriteJSONL(f, ops); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// ReadJSONL reads ops written by WriteJSONL.
func ReadJSONL(r io.Reader) ([]Op, error) {
	var ops []Op
	dec := json.NewDecoder(r)
	for {
		var op Op
		err := dec.Decode(&op)
		if err == io.EOF {
			return ops, nil
		}
		if err != nil {
			return nil, fmt.Errorf("history: decode op %d: %w", len(ops), err)
		}
		ops = append(ops, op)
	}
}
