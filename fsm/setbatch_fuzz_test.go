package fsm

import (
	"strings"
	"testing"
	"time"

	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/command"
)

// FuzzSetBatchShape: a batch is built from the input, one write per line
// ("subject|purpose|state|source|item key"). Whatever the API's validator
// accepts, apply's structural check accepts too (an accepted batch is never
// refused as invalid on a replica), and a refusal names the write or field.
func FuzzSetBatchShape(f *testing.F) {
	f.Add("u1|analytics|1|import|\nu2|analytics|2||", "batch-1")
	f.Add("u1|analytics|1||\nu1|analytics|2||", "")
	f.Add("u1|analytics|1||own-key", "b")
	f.Add("u1|Bad Purpose|1||", "b")
	f.Add("|analytics|1||", "")
	f.Add("u\xff|analytics|1||", "\xff")
	f.Add("u1|all|1|"+strings.Repeat("s", 257)+"|", strings.Repeat("k", 129))
	f.Add("", "")
	f.Fuzz(func(t *testing.T, lines, key string) {
		b := optoutd.SetBatchRequest{IdempotencyKey: key}
		if lines != "" {
			for _, l := range strings.Split(lines, "\n") {
				p := append(strings.SplitN(l, "|", 5), "", "", "", "", "")
				st := optoutd.StateUnspecified
				switch p[2] {
				case "1":
					st = optoutd.StateOptedOut
				case "2":
					st = optoutd.StateOptedIn
				}
				b.Sets = append(b.Sets, optoutd.SetRequest{Key: optoutd.Key{SubjectID: p[0], Purpose: p[1]}, State: st, Source: p[3], IdempotencyKey: p[4]})
			}
		}
		err := optoutd.ValidateSetBatch(b)
		if err != nil {
			msg := optoutd.ErrorMessage(err)
			if optoutd.ErrorCode(err) != optoutd.Invalid || !strings.HasPrefix(msg, "sets") && !strings.HasPrefix(msg, "idempotency_key:") {
				t.Fatalf("refusal %v does not name the write or field", err)
			}
			return
		}
		if p := setBatchProblem(command.SetBatch(b, time.Hour)); p != "" {
			t.Fatalf("the API accepted a batch that apply refuses: %s", p)
		}
	})
}
