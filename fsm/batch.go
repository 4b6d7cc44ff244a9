package fsm

import (
	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"go.etcd.io/bbolt"
)

// Apply implements raft.FSM. hashicorp/raft calls ApplyBatch instead because
// FSM is a BatchingFSM; Apply exists for the interface and for tests.
func (f *FSM) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries, in bbolt transactions of at most
// maxTxBytes of commands each, and records the last index applied in the
// same transaction as its effects. Entries at or below the stored applied
// index are skipped: they were applied before a restart, and the log is
// being replayed from the last snapshot.
//
// Each response is a *fsmv1.Result for a command, or nil for a
// configuration entry and for a replayed entry. If an entry cannot be
// decoded or stored, its transaction is rolled back (the ones before it
// stay committed) and the FSM halts (see halt); a restart replays from
// there and halts at the same entry again.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	if f.Halted() != nil {
		f.halt(logs[0].Index, f.Halted())
		return out
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	for start := 0; start < len(logs); {
		end, size := start+1, len(logs[start].Data)
		for end < len(logs) && size+len(logs[end].Data) <= maxTxBytes {
			size += len(logs[end].Data)
			end++
		}
		if !f.applyTx(logs[start:end], out[start:end]) {
			clear(out[start:])
			return out
		}
		start = end
	}
	return out
}

// maxTxBytes bounds the commands one bbolt transaction applies. bbolt
// splits a node only when the transaction commits, so a transaction that
// inserts very many keys into a small tree (a new node catching up on a
// long log: 256 entries of 1000-record batches) keeps growing one node, at
// a cost that grows with the square of its size. 1 MiB is some 10,000
// records, a few milliseconds of work; a single larger entry gets its own
// transaction.
const maxTxBytes = 1 << 20

// applyTx applies logs in one transaction, putting each result in out, and
// reports whether it committed; on a failure the FSM halts.
func (f *FSM) applyTx(logs []*raft.Log, out []interface{}) bool {
	var last, lastTerm uint64
	stamp := f.lastStamp.Load()
	failAt := logs[0].Index
	err := f.db.Update(func(tx *bbolt.Tx) error {
		prev := readU64(tx.Bucket(bucketMeta).Get(keyAppliedIndex))
		last = prev
		for i, l := range logs {
			if l.Index <= prev {
				continue
			}
			if l.Type == raft.LogCommand {
				res, s, err := f.applyOne(tx, l)
				if err != nil {
					failAt = l.Index
					return err
				}
				out[i] = res
				stamp = max(stamp, s)
			}
			last, lastTerm = l.Index, l.Term
		}
		if last == prev {
			return nil
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyAppliedTerm, u64(lastTerm)); err != nil {
			return err
		}
		if err := meta.Put(keyLastStamp, u64(uint64(stamp))); err != nil {
			return err
		}
		return meta.Put(keyAppliedIndex, u64(last))
	})
	if err != nil {
		clear(out)
		f.halt(failAt, err)
		return false
	}
	f.commits.Add(1)
	if last > f.applied.Load() {
		f.lastStamp.Store(stamp)
		f.advance(last)
	}
	return true
}

func (f *FSM) applyOne(tx *bbolt.Tx, l *raft.Log) (*fsmv1.Result, int64, error) {
	cmd, err := command.Decode(l.Data)
	if err != nil {
		return nil, 0, err
	}
	res, err := apply(tx, entry{index: l.Index, term: l.Term, cmd: cmd})
	return res, cmd.Stamp, err
}

// LastStamp is the latest leader time (Unix ns) stamped into an entry this
// FSM has applied. The leader never stamps a new entry earlier (see
// cluster's stamp).
func (f *FSM) LastStamp() int64 { return f.lastStamp.Load() }
