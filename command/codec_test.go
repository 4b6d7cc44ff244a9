package command

import (
	"errors"
	"testing"
	"time"

	fsmv1 "github.com/optoutd/optoutd/command/gen/optout/fsm/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzDecode: Decode never panics, and anything it accepts re-encodes to a
// command that decodes to the same value.
func FuzzDecode(f *testing.F) {
	v := uint64(3)
	seeds := []proto.Message{
		&fsmv1.SetCommand{SubjectId: "u1", Purpose: "email_marketing", State: fsmv1.State_STATE_OPTED_OUT, ExpectedVersion: &v},
		&fsmv1.TermStartCommand{LeaderId: "n1"},
		&fsmv1.RegisterNodeCommand{NodeId: "n1", ApiAddress: "127.0.0.1:7001"},
	}
	for _, m := range seeds {
		b, err := Encode(m, time.Unix(0, 42))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x02, 0x10, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(data)
		if err != nil {
			for _, want := range []error{ErrEmptyCommand, ErrUnknownType, ErrNewerFormat, ErrMalformed} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("Decode error %v wraps no sentinel", err)
		}
		b, err := Encode(d.Payload, time.Unix(0, d.Stamp))
		if err != nil {
			t.Fatal(err)
		}
		d2, err := Decode(b)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if d2.Type != d.Type || d2.Stamp != d.Stamp || !proto.Equal(d2.Payload, d.Payload) {
			t.Fatalf("round trip changed the command: %v -> %v", d, d2)
		}
	})
}

func TestRestampKeepsPayload(t *testing.T) {
	b, err := Encode(&fsmv1.TermStartCommand{LeaderId: "n1"}, time.Unix(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	b2, err := Restamp(b, time.Unix(0, 99))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(b2)
	if err != nil {
		t.Fatal(err)
	}
	if d.Stamp != 99 || d.Payload.(*fsmv1.TermStartCommand).LeaderId != "n1" {
		t.Fatalf("restamped command = %+v", d)
	}
	if _, err := Restamp([]byte{0xff, 0xff}, time.Now()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Restamp(garbage) = %v, want ErrMalformed", err)
	}
}
