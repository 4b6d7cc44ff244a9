package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestFlagErrorsNameTheFlag(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--nemesis", "partition-everything"}, "--nemesis"},
		{[]string{"--nemesis", "clock-skew"}, "not available yet"},
		{[]string{"--nemesis", "kill", "--time", "0s"}, "--time"},
		{[]string{"--nemesis", "kill", "--time", "-5s"}, "--time"},
		{[]string{"--nemesis", "kill", "--time", "3s"}, "--time"},
		{[]string{"--nemesis", "kill", "--nodes", "2"}, "--nodes"},
		{[]string{"--nemesis", "kill", "--backend", "vm"}, "--backend"},
		{[]string{"--nemesis", "kill", "--concurrency", "0"}, "--concurrency"},
		{[]string{"--nemesis", "kill", "--keys", "0"}, "--keys"},
		{[]string{"--tier", "weekly"}, "--tier"},
		{[]string{"--tier", "ci", "--long"}, "--long"},
		{[]string{}, "--nemesis"},
		{[]string{"--nemesis", "kill", "--log-level", "loud"}, "--log-level"},
		{[]string{"--nemesis", "kill", "--check-timeout", "0s"}, "--check-timeout"},
		{[]string{"--nemesis", "kill", "extra"}, "unexpected"},
		{[]string{"--nemesis", "kill", "--workload", "bank"}, `--workload: unknown "bank"`},
		{[]string{"--tier", "ci", "--workload", "enforce"}, "--workload: the ci tier runs every workload"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		err := NewMain(&out, &errb).ParseFlags(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one mentioning %q", c.args, err, c.want)
		}
	}
}

func TestFlagsAccepted(t *testing.T) {
	for _, args := range [][]string{
		{"--nemesis", "partition-leader,kill,pause", "--time", "60s"},
		{"--nemesis", "kill", "--nodes", "3", "--time", "10s"},
		{"--tier", "ci"},
		{"--long", "--time", "75s"},
		{"--negative-control"},
		{"--tier", "ci", "--nemesis", "lagging-follower", "--backend", "docker"},
		{"--workload", "enforce", "--nemesis", "kill,pause", "--time", "30s"},
		{"--workload", "enforce", "--negative-control", "--negative-runs", "5"},
		{"--workload", "register", "--nemesis", "kill"},
	} {
		m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
		if err := m.ParseFlags(args); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func TestEnvironmentSetsFlags(t *testing.T) {
	t.Setenv("OPTOUT_JEPSEN_NODES", "2")
	err := NewMain(&bytes.Buffer{}, &bytes.Buffer{}).ParseFlags([]string{"--nemesis", "kill"})
	if err == nil || !strings.Contains(err.Error(), "--nodes") {
		t.Fatalf("OPTOUT_JEPSEN_NODES=2 not read: %v", err)
	}
	t.Setenv("OPTOUT_JEPSEN_NODES", "3")
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := m.ParseFlags([]string{"--nemesis", "kill"}); err != nil || m.tc.Base.Nodes != 3 {
		t.Fatalf("nodes %d, err %v", m.tc.Base.Nodes, err)
	}
}
