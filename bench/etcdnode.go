package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/version"
	"go.etcd.io/etcd/server/v3/embed"
)

// etcdSnapshotCount matches optoutd's default snapshot threshold (8192
// entries); etcd's own default is 10000.
const etcdSnapshotCount = 8192

func etcdServerVersion() string { return "v" + version.Version }

type etcdNodeFlags struct {
	name, dataDir, clientURL, peerURL, initial string
	heartbeatMs, electionMs                    uint
}

// etcdNodeMain is the hidden `bench etcd-node` subcommand: one etcd member
// in this process until SIGTERM or SIGINT.
func etcdNodeMain(args []string, stderr io.Writer) int {
	var f etcdNodeFlags
	fs := flag.NewFlagSet("bench etcd-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.name, "name", "", "member name")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory")
	fs.StringVar(&f.clientURL, "client-url", "", "client URL to listen on and advertise")
	fs.StringVar(&f.peerURL, "peer-url", "", "peer URL to listen on and advertise")
	fs.StringVar(&f.initial, "initial-cluster", "", "name=peerURL,...")
	fs.UintVar(&f.heartbeatMs, "heartbeat-ms", 100, "heartbeat interval in ms")
	fs.UintVar(&f.electionMs, "election-ms", 1000, "election timeout in ms")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := f.embedConfig()
	if err != nil {
		fmt.Fprintln(stderr, "bench etcd-node:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runEtcdNode(ctx, cfg); err != nil {
		fmt.Fprintln(stderr, "bench etcd-node:", err)
		return 1
	}
	return 0
}

func (f *etcdNodeFlags) embedConfig() (*embed.Config, error) {
	if f.name == "" || f.dataDir == "" || f.initial == "" {
		return nil, errors.New("--name, --data-dir and --initial-cluster are required")
	}
	cu, err := url.Parse(f.clientURL)
	if err != nil || cu.Host == "" {
		return nil, fmt.Errorf("--client-url: %q is not a URL", f.clientURL)
	}
	pu, err := url.Parse(f.peerURL)
	if err != nil || pu.Host == "" {
		return nil, fmt.Errorf("--peer-url: %q is not a URL", f.peerURL)
	}
	cfg := embed.NewConfig()
	cfg.Name = f.name
	cfg.Dir = f.dataDir
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = f.initial
	cfg.InitialClusterToken = "optoutd-bench"
	cfg.ClusterState = embed.ClusterStateFlagNew // ignored once the data dir has a WAL
	cfg.TickMs = f.heartbeatMs
	cfg.ElectionMs = f.electionMs
	cfg.SnapshotCount = etcdSnapshotCount
	cfg.MaxTxnOps = maxBatch // the batch workload sends up to --batch-size Gets per Txn
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{"stderr"}
	return cfg, cfg.Validate()
}

func runEtcdNode(ctx context.Context, cfg *embed.Config) error {
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		return errors.New("not ready after 60s")
	case <-ctx.Done():
		return nil
	}
	select {
	case err := <-e.Err():
		return err
	case <-ctx.Done():
		return nil
	}
}
