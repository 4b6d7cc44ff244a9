package checker

import (
	"fmt"
	"hash/fnv"

	"github.com/anishathalye/porcupine"
	"github.com/optoutd/optoutd/jepsen/history"
)

// RegState is the model's state of one key.
//
// Tag "" means no record exists. When Exact is false the record was written
// by a write whose outcome was unknown and whose version no read has pinned
// yet: the true version is then strictly greater than Ver (and is fixed, so
// the first observation pins it).
type RegState struct {
	Tag   string
	State string
	Ver   uint64
	Exact bool
}

func initState() RegState { return RegState{Exact: true} }

// canBe reports whether the current version can equal v (0 meaning "no
// record"), and returns the state with the version pinned to v.
func (s RegState) canBe(v uint64) (RegState, bool) {
	if s.Tag == "" {
		return s, v == 0
	}
	if s.Exact {
		return s, v == s.Ver
	}
	if v > s.Ver {
		s.Ver, s.Exact = v, true
		return s, true
	}
	return s, false
}

// below reports whether the current version can be strictly less than v.
func (s RegState) below(v uint64) bool {
	switch {
	case s.Tag == "":
		return v > 0
	case s.Exact:
		return s.Ver < v
	default: // true version >= Ver+1
		return s.Ver+1 < v
	}
}

// floor is a strict lower bound for the version of the next write.
func (s RegState) floor() uint64 {
	if s.Tag == "" || s.Exact {
		return s.Ver
	}
	return s.Ver + 1
}

// RegInput is one operation as the model sees it.
type RegInput struct {
	Type history.Type
	// Write: the tag and state written. Read: the tag (Get only) and state
	// seen; "" when no record.
	Tag   string
	State string
	// HasExpected and Expected describe a CAS.
	HasExpected bool
	Expected    uint64
	// Outcome as the client saw it (never NotApplied or Fail: those ops
	// are not given to the model).
	Outcome history.Outcome
	// Version: read: the version seen; OK write: the version assigned;
	// Mismatch: the current version reported; Unknown write: the version a
	// read saw for this tag, or 0 when no read saw it.
	Version uint64
	// Op is the history index, for reports.
	Op int
}

// step is the sequential specification of one key. See DESIGN.md, "The
// register model".
func step(st any, in any) (bool, any) {
	s := st.(RegState)
	op := in.(RegInput)
	switch op.Type {
	case history.Get, history.Check:
		return stepRead(s, op)
	case history.Write, history.CAS:
		return stepWrite(s, op)
	}
	return false, s
}

func stepRead(s RegState, op RegInput) (bool, any) {
	if op.Outcome == history.NotFound || (op.Type == history.Check && op.State == "") {
		return s.Tag == "" && op.Version == 0, s
	}
	if s.Tag == "" || s.State != op.State {
		return false, s
	}
	if op.Type == history.Get && s.Tag != op.Tag {
		return false, s
	}
	pinned, ok := s.canBe(op.Version)
	return ok, pinned
}

func stepWrite(s RegState, op RegInput) (bool, any) {
	switch op.Outcome {
	case history.OK:
		if op.HasExpected {
			var ok bool
			if s, ok = s.canBe(op.Expected); !ok {
				return false, s
			}
		} else if denied(s, op) {
			return false, s
		}
		if !s.below(op.Version) {
			return false, s
		}
		return true, RegState{Tag: op.Tag, State: op.State, Ver: op.Version, Exact: true}
	case history.Mismatch:
		// A CAS whose expected version is not current, or a blind opt-in
		// refused by deny-wins; either way it reports the current version.
		if op.HasExpected && op.Expected == op.Version || !op.HasExpected && !denied(s, op) {
			return false, s
		}
		pinned, ok := s.canBe(op.Version)
		return ok, pinned
	case history.Unknown:
		if op.HasExpected {
			pinned, ok := s.canBe(op.Expected)
			if !ok {
				// Applied as a failed compare-and-set: no effect.
				return true, s
			}
			s = pinned
		} else if denied(s, op) {
			return true, s // applied as a refused opt-in: no effect
		}
		if op.Version != 0 {
			if !s.below(op.Version) {
				return false, s
			}
			return true, RegState{Tag: op.Tag, State: op.State, Ver: op.Version, Exact: true}
		}
		return true, RegState{Tag: op.Tag, State: op.State, Ver: s.floor(), Exact: false}
	}
	return false, s
}

// denied reports whether deny-wins refuses a blind write: an opt-in may
// replace an opt-out only by naming its version (a CAS).
func denied(s RegState, op RegInput) bool {
	return !op.HasExpected && s.Tag != "" && s.State == "opted_out" && op.State == "opted_in"
}

// RegisterModel is the porcupine model of one key.
func RegisterModel() porcupine.Model {
	return porcupine.Model{
		Init: func() any { return initState() },
		Step: func(st, in, _ any) (bool, any) { return step(st, in) },
		Equal: func(a, b any) bool {
			return a.(RegState) == b.(RegState)
		},
		Hash: func(st any) uint64 {
			s := st.(RegState)
			h := fnv.New64a()
			fmt.Fprintf(h, "%s\x00%s\x00%d\x00%t", s.Tag, s.State, s.Ver, s.Exact)
			return h.Sum64()
		},
		DescribeOperation: func(in, _ any) string { return describeInput(in.(RegInput)) },
		DescribeState: func(st any) string {
			s := st.(RegState)
			if s.Tag == "" {
				return "no record"
			}
			if !s.Exact {
				return fmt.Sprintf("%s %s v>%d", s.Tag, s.State, s.Ver)
			}
			return fmt.Sprintf("%s %s v%d", s.Tag, s.State, s.Ver)
		},
	}
}

func describeInput(op RegInput) string {
	exp := ""
	if op.HasExpected {
		exp = fmt.Sprintf(" if v=%d", op.Expected)
	}
	switch op.Type {
	case history.Get:
		if op.Outcome == history.NotFound {
			return fmt.Sprintf("#%d get → not found", op.Op)
		}
		return fmt.Sprintf("#%d get → %s %s v%d", op.Op, op.Tag, op.State, op.Version)
	case history.Check:
		if op.State == "" {
			return fmt.Sprintf("#%d check → no record", op.Op)
		}
		return fmt.Sprintf("#%d check → %s v%d", op.Op, op.State, op.Version)
	}
	switch op.Outcome {
	case history.OK:
		return fmt.Sprintf("#%d %s %s %s%s → ok v%d", op.Op, op.Type, op.Tag, op.State, exp, op.Version)
	case history.Mismatch:
		return fmt.Sprintf("#%d %s %s %s%s → refused, current v%d", op.Op, op.Type, op.Tag, op.State, exp, op.Version)
	default:
		v := "?"
		if op.Version != 0 {
			v = fmt.Sprintf("v%d (seen by a read)", op.Version)
		}
		return fmt.Sprintf("#%d %s %s %s%s → unknown, %s", op.Op, op.Type, op.Tag, op.State, exp, v)
	}
}
