package checker

import (
	"testing"

	"github.com/optoutd/optoutd/jepsen/history"
)

func adds(outcomes map[string]history.Outcome) []history.Op {
	var ops []history.Op
	for k, o := range outcomes {
		ops = append(ops, history.Op{Type: history.Add, Key: k, Outcome: o})
	}
	return ops
}

func TestCheckSet(t *testing.T) {
	ops := adds(map[string]history.Outcome{"a": history.OK, "b": history.Unknown, "c": history.NotApplied, "d": history.Unknown})
	all := map[string]bool{"a": true, "b": true}
	cases := []struct {
		name   string
		finals []SetFinal
		probes []string
		valid  bool
		check  func(SetResult) bool
	}{
		{"all good", []SetFinal{{Node: "n1", Present: all}, {Node: "n2", Present: all}}, []string{"p"}, true,
			func(r SetResult) bool {
				return r.Acked == 1 && r.Unknown == 2 && r.NotApplied == 1 && r.UnknownPresent == 1
			}},
		{"acknowledged lost on one node", []SetFinal{{Node: "n1", Present: all}, {Node: "n2", Present: map[string]bool{"b": true}}}, nil, false,
			func(r SetResult) bool { return len(r.Lost) == 1 }},
		{"not-applied add present", []SetFinal{{Node: "n1", Present: map[string]bool{"a": true, "c": true}}}, nil, false,
			func(r SetResult) bool { return len(r.Phantom) == 1 }},
		{"never-attempted key present", []SetFinal{{Node: "n1", Present: map[string]bool{"a": true, "p": true}}}, []string{"p"}, false,
			func(r SetResult) bool { return len(r.Phantom) == 1 }},
		{"unknown add on some nodes only", []SetFinal{{Node: "n1", Present: all}, {Node: "n2", Present: map[string]bool{"a": true}}}, nil, false,
			func(r SetResult) bool { return len(r.Divergent) == 1 }},
		{"unreadable node", []SetFinal{{Node: "n1", Present: all}, {Node: "n2", Err: "unavailable"}}, nil, false,
			func(r SetResult) bool { return len(r.Unreadable) == 1 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckSet(ops, tc.finals, tc.probes)
			if r.Valid != tc.valid || !tc.check(r) {
				t.Fatalf("got %+v", r)
			}
		})
	}
}

func TestCheckMonotonic(t *testing.T) {
	ops := []history.Op{
		{Index: 0, Worker: 1, Key: "k", Type: history.Get, Outcome: history.OK, Version: 5, Call: 0},
		{Index: 1, Worker: 1, Key: "k", Type: history.Write, Outcome: history.OK, Version: 9, Call: 10},
		{Index: 2, Worker: 2, Key: "k", Type: history.Get, Outcome: history.OK, Version: 3, Call: 20}, // other worker: fine
		{Index: 3, Worker: 1, Key: "other", Type: history.Get, Outcome: history.NotFound, Call: 25},
		{Index: 4, Worker: 1, Key: "k", Type: history.Get, Outcome: history.Fail, Call: 30},      // failed: no version
		{Index: 5, Worker: 1, Key: "k", Type: history.Write, Outcome: history.Unknown, Call: 35}, // unknown: no version
		{Index: 6, Worker: 0, Key: "k", Type: history.Get, Outcome: history.OK, Version: 1, Call: 36, Final: true},
	}
	if r := CheckMonotonic(ops); !r.Valid {
		t.Fatalf("valid history rejected: %+v", r)
	}
	bad := append(ops, history.Op{Index: 7, Worker: 1, Key: "k", Type: history.Check, Outcome: history.OK, Version: 7, Call: 40})
	r := CheckMonotonic(bad)
	if r.Valid || len(r.Violations) != 1 {
		t.Fatalf("went-back version not caught: %+v", r)
	}
}

func TestCheckConvergence(t *testing.T) {
	same := []Digest{{Node: "n1", AppliedIndex: 9, SHA256: "aa"}, {Node: "n2", AppliedIndex: 9, SHA256: "aa"}}
	if r := CheckConvergence(same); !r.Valid {
		t.Fatalf("%+v", r)
	}
	for name, ds := range map[string][]Digest{
		"behind":    {{Node: "n1", AppliedIndex: 9, SHA256: "aa"}, {Node: "n2", AppliedIndex: 8, SHA256: "bb"}},
		"divergent": {{Node: "n1", AppliedIndex: 9, SHA256: "aa"}, {Node: "n2", AppliedIndex: 9, SHA256: "bb"}},
		"error":     {{Node: "n1", AppliedIndex: 9, SHA256: "aa"}, {Node: "n2", Err: "down"}},
		"empty":     nil,
	} {
		if r := CheckConvergence(ds); r.Valid || r.Reason == "" {
			t.Errorf("%s: %+v", name, r)
		}
	}
}
