package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
)

// The README and the operations guide show the ports a user gets by
// default: APIs on 7001-7004 and Raft on 7101-7104. A test that ran them
// as written would fail whenever a user's own `optoutd dev` (or another
// test run) holds those ports, so the tests run the documented commands on
// free ports instead, rewriting only the port prefix.

// docPorts is a pair of four-digit port prefixes: node i's API port is
// API prefix followed by the digit i, and likewise for Raft, the way the
// docs' "700$i" and "710$i" spell them.
type docPorts struct {
	api, raft string // e.g. "2345": ports 23451..23459
}

// apiPort is node i's API port (i from 1).
func (p docPorts) apiPort(i int) string { return p.api + strconv.Itoa(i) }

// raftPort is node i's Raft port (i from 1).
func (p docPorts) raftPort(i int) string { return p.raft + strconv.Itoa(i) }

// rewrite replaces the documented 127.0.0.1:700x and 127.0.0.1:710x
// addresses by the chosen ones.
func (p docPorts) rewrite(s string) string {
	return strings.NewReplacer("127.0.0.1:700", "127.0.0.1:"+p.api, "127.0.0.1:710", "127.0.0.1:"+p.raft).Replace(s)
}

// endpoints is the --endpoints value for nodes 1..n.
func (p docPorts) endpoints(n int) string {
	var eps []string
	for i := 1; i <= n; i++ {
		eps = append(eps, "127.0.0.1:"+p.apiPort(i))
	}
	return strings.Join(eps, ",")
}

// freeDocPorts picks two prefixes whose ports 1..nodes are all free now.
// Prefixes 1000..3275 give ports 10000..32759, below Linux's ephemeral
// range, so an outgoing connection rarely takes one in between.
func freeDocPorts(t *testing.T, nodes int) docPorts {
	t.Helper()
	free := func(prefix int) bool {
		for i := 1; i <= nodes; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d%d", prefix, i))
			if err != nil {
				return false
			}
			_ = ln.Close()
		}
		return true
	}
	var got []int
	for tries := 0; tries < 200 && len(got) < 2; tries++ {
		p := 1000 + rand.IntN(2276)
		if (len(got) == 0 || got[0] != p) && free(p) {
			got = append(got, p)
		}
	}
	if len(got) < 2 {
		t.Fatal("found no free port range for the documented commands")
	}
	return docPorts{api: strconv.Itoa(got[0]), raft: strconv.Itoa(got[1])}
}

func TestDocPortsRewrite(t *testing.T) {
	p := docPorts{api: "2345", raft: "3012"}
	in := "--api-addr 127.0.0.1:700$i --raft-addr 127.0.0.1:710$i --initial-cluster n1=127.0.0.1:7101 http://127.0.0.1:7003/x"
	want := "--api-addr 127.0.0.1:2345$i --raft-addr 127.0.0.1:3012$i --initial-cluster n1=127.0.0.1:30121 http://127.0.0.1:23453/x"
	if got := p.rewrite(in); got != want {
		t.Errorf("rewrite:\n got %s\nwant %s", got, want)
	}
	if got := p.endpoints(2); got != "127.0.0.1:23451,127.0.0.1:23452" {
		t.Errorf("endpoints(2) = %s", got)
	}
}
