package fsm

import (
	"crypto/sha256"
	"fmt"

	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
)

// applySetBatch applies a batch's writes in order, each under Set's rules
// (setRecord), all at the entry's index. The batch-level checks (shape,
// idempotency, schema) answer for the whole batch; after them a write that
// a rule refuses (a version mismatch, deny wins, an undefined purpose, an
// erased subject) gets its refusal in its item and the others still apply.
// The audit entries of the written records take seq 0, 1, 2... in order.
func (s *state) applySetBatch(e entry, c *fsmv1.SetBatchCommand) (*fsmv1.Result, error) {
	if msg := setBatchProblem(c); msg != "" {
		return failed(e, fsmv1.ErrorCode_ERROR_CODE_INVALID, "%s", msg), nil
	}
	var hash []byte
	if c.IdempotencyKey != "" {
		hash = batchRequestHash(c)
		prior, err := s.idempotentResult(e, []byte(c.IdempotencyKey), hash)
		if err != nil || prior != nil {
			return prior, err
		}
	}
	if r := s.schemaTooOld(e, c.ClientSchemaVersion); r != nil {
		return r, nil
	}
	res := &fsmv1.Result{Index: e.index, Items: make([]*fsmv1.Result, len(c.Sets))}
	prevs := make([]*fsmv1.StoredRecord, len(c.Sets))
	var seq uint32
	for i, sc := range c.Sets {
		sc.Caller = c.Caller // audited as the batch's caller
		item, prev, err := s.setRecord(e, sc, seq)
		if err != nil {
			return nil, err
		}
		if item.ErrorCode == fsmv1.ErrorCode_ERROR_CODE_UNSPECIFIED {
			seq++
		}
		item.Index = 0 // the batch's, not repeated
		res.Items[i], prevs[i] = item, prev
	}
	if c.IdempotencyKey != "" {
		if err := s.rememberIdempotent(e, []byte(c.IdempotencyKey), hash, c.IdempotencyTtlNanos, res); err != nil {
			return nil, err
		}
	}
	for i, item := range res.Items {
		if item.ErrorCode == fsmv1.ErrorCode_ERROR_CODE_UNSPECIFIED {
			withPrevious(item, prevs[i])
		}
	}
	return res, nil
}

// maxBatchSets is the most writes apply accepts in one batch. The API
// allows fewer (optoutd.MaxBatchSets); this bound only keeps a seq in 32
// bits and one entry's work bounded whatever a proposer sent.
const maxBatchSets = 1 << 16

// setBatchProblem is the structural check of a batch: every write valid as
// a Set without idempotency fields, and no record written twice (a record
// changes at most once per version). It is a pure function of the command.
func setBatchProblem(c *fsmv1.SetBatchCommand) string {
	if n := len(c.Sets); n == 0 || n > maxBatchSets {
		return fmt.Sprintf("a batch needs 1..%d sets, got %d", maxBatchSets, n)
	}
	if p := idempotencyProblem(c.IdempotencyKey, c.IdempotencyTtlNanos); p != "" {
		return p
	}
	seen := make(map[string]int, len(c.Sets))
	for i, sc := range c.Sets {
		if sc.IdempotencyKey != "" || sc.IdempotencyTtlNanos != 0 {
			return fmt.Sprintf("sets[%d]: a write in a batch carries no idempotency key of its own", i)
		}
		if msg := setProblem(sc); msg != "" {
			return fmt.Sprintf("sets[%d]: %s", i, msg)
		}
		k := string(recordKey(sc.SubjectId, sc.Purpose))
		if j, dup := seen[k]; dup {
			return fmt.Sprintf("sets[%d]: the same record as sets[%d]; a batch writes each record at most once", i, j)
		}
		seen[k] = i
	}
	return ""
}

// batchRequestHash identifies "the same batch" for idempotency: every
// write's requestHash in order. The tag keeps a batch's hash from ever
// equalling a single Set's under a shared key.
func batchRequestHash(c *fsmv1.SetBatchCommand) []byte {
	var cn canon
	cn.str("optoutd-set-batch-v1").u64(uint64(len(c.Sets)))
	for _, sc := range c.Sets {
		cn.bytes(requestHash(sc))
	}
	sum := sha256.Sum256(cn.b)
	return sum[:]
}
