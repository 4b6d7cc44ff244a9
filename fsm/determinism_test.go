package fsm

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"
)

// TestReplicasAgreeWhateverTheBatching: followers apply the same log in
// different batches than the leader. Every rule (idempotency expiry, audit
// retention, erasure, catalog changes) must land the same way, so two FSMs
// fed one log in different batch sizes end with the same digest, the same
// audit chain and the same results.
func TestReplicasAgreeWhateverTheBatching(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		logs := []*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: mustEncode(t, fsmv1.CommandType_COMMAND_TYPE_INIT_CLUSTER,
			&fsmv1.InitClusterCommand{ErasureKey: make([]byte, 32), Purposes: command.PurposeDefs(optoutd.StarterCatalog)}, 0)}}
		n := rapid.IntRange(1, 80).Draw(rt, "n")
		stamp := int64(0)
		for i := 0; i < n; i++ {
			stamp += rapid.Int64Range(0, 50).Draw(rt, "dt")
			typ, m := randomCommand(rt)
			logs = append(logs, &raft.Log{Index: uint64(len(logs) + 1), Term: 1, Type: raft.LogCommand, Data: mustEncode(t, typ, m, stamp)})
		}
		a, b := openTemp(t), openTemp(t)
		resA := a.ApplyBatch(logs)
		var resB []interface{}
		for i := 0; i < len(logs); {
			j := min(len(logs), i+rapid.IntRange(1, 7).Draw(rt, "batch"))
			resB = append(resB, b.ApplyBatch(logs[i:j])...)
			i = j
		}
		for i := range resA {
			if !proto.Equal(resA[i].(*fsmv1.Result), resB[i].(*fsmv1.Result)) {
				rt.Fatalf("entry %d: results differ: %v vs %v", i+1, resA[i], resB[i])
			}
		}
		if digest(t, a) != digest(t, b) {
			rt.Fatal("digests differ")
		}
		for _, f := range []*FSM{a, b} {
			err := f.View(func(r *Reader) error {
				rep, err := r.VerifyAudit()
				if err == nil && !rep.OK() {
					err = fmt.Errorf("audit chain: %s", rep)
				}
				return err
			})
			if err != nil {
				rt.Fatal(err)
			}
		}
	})
}

func randomCommand(rt *rapid.T) (fsmv1.CommandType, proto.Message) {
	subject := rapid.SampledFrom([]string{"u1", "u2", "u3"}).Draw(rt, "subject")
	switch rapid.IntRange(0, 9).Draw(rt, "kind") {
	case 0:
		return fsmv1.CommandType_COMMAND_TYPE_ERASE_SUBJECT, &fsmv1.EraseSubjectCommand{SubjectId: subject}
	case 1:
		ret := rapid.Int64Range(0, 200).Draw(rt, "retention")
		return fsmv1.CommandType_COMMAND_TYPE_UPDATE_SETTINGS, &fsmv1.UpdateSettingsCommand{AuditRetentionNanos: &ret}
	case 2:
		d := fsmv1.DefaultDecision(rapid.IntRange(1, 2).Draw(rt, "default"))
		return fsmv1.CommandType_COMMAND_TYPE_DEFINE_PURPOSE, &fsmv1.DefinePurposeCommand{Purpose: &fsmv1.PurposeDef{Name: "extra", DefaultDecision: d}}
	default:
		c := &fsmv1.SetCommand{
			SubjectId: subject,
			Purpose:   rapid.SampledFrom([]string{"email_marketing", "analytics", "all", "extra"}).Draw(rt, "purpose"),
			State:     fsmv1.State(rapid.IntRange(1, 2).Draw(rt, "state")),
			Source:    rapid.SampledFrom([]string{"", "web"}).Draw(rt, "source"),
		}
		if rapid.Bool().Draw(rt, "cas") {
			v := rapid.Uint64Range(0, 90).Draw(rt, "expected")
			c.ExpectedVersion = &v
		}
		if rapid.Bool().Draw(rt, "idem") {
			c.IdempotencyKey = rapid.SampledFrom([]string{"k1", "k2"}).Draw(rt, "key")
			c.IdempotencyTtlNanos = rapid.Int64Range(1, 100).Draw(rt, "ttl")
		}
		return fsmv1.CommandType_COMMAND_TYPE_SET, c
	}
}
