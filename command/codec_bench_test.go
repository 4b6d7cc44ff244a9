package command_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/optoutd/optoutd/command"
	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// The command codec's micro-benchmarks (issue 11): what every write costs
// on the way into the log (Encode on the proposer, Restamp on the leader)
// and out of it (Decode on every node), for one Set and a SetBatch of 500.
// Allocation counts are reported; speed is compared, never asserted.

func benchSet() proto.Message {
	return &fsmv1.SetCommand{SubjectId: "subject-12345", Purpose: "analytics", State: fsmv1.State_STATE_OPTED_OUT,
		Source: "web-form", Reason: "unsubscribe link", IdempotencyKey: "c-0123456789abcdef", IdempotencyTtlNanos: int64(time.Hour)}
}

func benchBatch() proto.Message {
	c := &fsmv1.SetBatchCommand{IdempotencyKey: "imp-0123456789abcdef", IdempotencyTtlNanos: int64(time.Hour)}
	for j := range 500 {
		c.Sets = append(c.Sets, &fsmv1.SetCommand{SubjectId: fmt.Sprintf("subject-%d", j), Purpose: "analytics",
			State: fsmv1.State_STATE_OPTED_OUT, Source: "import:file.csv", Reason: "observed 2024-03-01T10:00:00Z"})
	}
	return c
}

func BenchmarkCodec(b *testing.B) {
	for name, m := range map[string]proto.Message{"Set": benchSet(), "SetBatch500": benchBatch()} {
		data, err := command.Encode(m, time.Unix(1000, 0))
		if err != nil {
			b.Fatal(err)
		}
		b.Run("Encode"+name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := command.Encode(m, time.Unix(1000, 0)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Restamp"+name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := command.Restamp(data, time.Unix(2000, 0)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Decode"+name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := command.Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
