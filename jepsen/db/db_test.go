package db

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseNetns(t *testing.T) {
	out := "ojp-n2 (id: 4)\nother\nojp-n1 (id: 3)\nojpx-n1\n\n"
	if got, want := parseNetns(out), []string{"ojp-n2", "ojp-n1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

func TestParseLinks(t *testing.T) {
	out := `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue
5: docker0: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500
14: ojp-br0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500
16: ojp-n1-h@if15: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 master ojp-br0
17: veth-ojp-x@if3: <BROADCAST> mtu 1500
`
	if got, want := parseLinks(out), []string{"ojp-br0", "ojp-n1-h"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

func TestIptablesDeletes(t *testing.T) {
	out := `-P FORWARD DROP
-A FORWARD -j DOCKER-USER
-A FORWARD -i ojp-br0 -o ojp-br0 -m comment --comment ojp-jepsen -j ACCEPT
-A FORWARD -i x -m comment --comment "ojp-jepsen" -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
`
	got := iptablesDeletes(out)
	want := [][]string{
		strings.Fields("-D FORWARD -i ojp-br0 -o ojp-br0 -m comment --comment ojp-jepsen -j ACCEPT"),
		strings.Fields("-D FORWARD -i x -m comment --comment ojp-jepsen -j ACCEPT"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

func TestNamesFitLinuxLimits(t *testing.T) {
	for i := 0; i < 200; i++ {
		id := nodeID(i)
		for _, name := range []string{nsName(id), vethHost(id), vethNode(id), netnsBridge} {
			if len(name) > 15 {
				t.Fatalf("link name %q is over 15 bytes", name)
			}
			if !ours(name) {
				t.Fatalf("name %q would escape cleanup", name)
			}
		}
		for _, name := range []string{containerName(id), volumeName(id), dockerNetwork} {
			if !ours(name) {
				t.Fatalf("name %q would escape cleanup", name)
			}
		}
	}
}

func TestNftScript(t *testing.T) {
	heal := nftScript(nil)
	if strings.Contains(heal, "drop") || !strings.Contains(heal, "delete table inet ojp") {
		t.Fatalf("heal script: %q", heal)
	}
	s := nftScript([]string{"10.213.0.12", "10.213.0.13"})
	if !strings.Contains(s, "ip saddr { 10.213.0.12, 10.213.0.13 } drop") || !strings.Contains(s, "hook input") {
		t.Fatalf("drop script: %q", s)
	}
}

func TestServerArgs(t *testing.T) {
	nodes := []Node{{ID: "n1", API: "10.0.0.1:7001", Raft: "10.0.0.1:7101"}, {ID: "n2", API: "10.0.0.2:7001", Raft: "10.0.0.2:7101"}}
	args := strings.Join(serverArgs(nodes[1], "0.0.0.0:7001", "/data", nodes, []string{"--snapshot-threshold", "64"}, nil), " ")
	for _, want := range []string{"server", "--id n2", "--api-addr 0.0.0.0:7001", "--api-advertise 10.0.0.2:7001",
		"--raft-addr 10.0.0.2:7101", "--initial-cluster n1=10.0.0.1:7101,n2=10.0.0.2:7101", "--snapshot-threshold 64"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	joined := strings.Join(serverArgs(nodes[1], "0.0.0.0:7001", "/data", nodes, nil, []string{"10.0.0.1:7001"}), " ")
	if !strings.Contains(joined, "--join 10.0.0.1:7001") || strings.Contains(joined, "--initial-cluster") {
		t.Errorf("a re-added node must use --join and not --initial-cluster: %q", joined)
	}
}

func TestDropsBySink(t *testing.T) {
	got := dropsBySink([]Drop{{From: "n1", To: "n2"}, {From: "n3", To: "n2"}, {From: "n2", To: "n1"}})
	want := map[string][]string{"n2": {"n1", "n3"}, "n1": {"n2"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
}
