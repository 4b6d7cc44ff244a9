package client_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/optoutd/optoutd/api"
	"github.com/optoutd/optoutd/cluster"
	"github.com/optoutd/optoutd/cluster/clustertest"
	"github.com/optoutd/optoutd/store"
)

// exampleEndpoints are the API addresses of the real three-node cluster
// (Raft, bbolt files in a temporary directory, loopback TCP) that the
// examples run against; TestMain starts it and stops it.
var exampleEndpoints []string

func TestMain(m *testing.M) {
	stop, err := startExampleCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "example cluster:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

func startExampleCluster() (func(), error) {
	dir, err := os.MkdirTemp("", "optoutd-client-examples-")
	if err != nil {
		return nil, err
	}
	nw := clustertest.NewNet()
	ids := []string{"n1", "n2", "n3"}
	initial := map[string]string{}
	for _, id := range ids {
		nn, err := nw.Node(id)
		if err != nil {
			return nil, err
		}
		initial[id] = nn.Addr()
	}
	var nodes []*cluster.Node
	var servers []*httptest.Server
	stop := func() {
		for _, s := range servers {
			s.Close()
		}
		for _, n := range nodes {
			_ = n.Close()
		}
		_ = os.RemoveAll(dir)
	}
	for _, id := range ids {
		nn, _ := nw.Node(id)
		cfg := clustertest.TestConfig()
		cfg.ID, cfg.DataDir, cfg.RaftAddr, cfg.Network, cfg.InitialCluster = id, filepath.Join(dir, id), nn.Addr(), nn, initial
		cfg.APIAdvertise = "127.0.0.1:1"
		n, err := cluster.Open(cfg)
		if err != nil {
			stop()
			return nil, err
		}
		nodes = append(nodes, n)
		srv := httptest.NewServer(api.NewHandler(store.New(n), api.Options{NodeID: id}))
		servers = append(servers, srv)
		exampleEndpoints = append(exampleEndpoints, srv.Listener.Addr().String())
	}
	return stop, nil
}
