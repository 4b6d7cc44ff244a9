package db

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	dockerNetwork = Prefix + "-net"
	dockerSubnet  = "10.214.0"
)

// DockerOptions configures the docker backend.
type DockerOptions struct {
	Options
	// Image is the optoutd image (deploy/build-image.sh builds it).
	Image string
}

// Docker runs every node as a container of the project's image on a
// user-defined network. Partitions are nftables rules entered into each
// container's network namespace with nsenter, from the host: the image is
// FROM scratch and has no tools of its own.
type Docker struct {
	opts  DockerOptions
	r     runner
	nodes []Node

	mu    sync.Mutex
	drops []Drop
}

// CheckDocker reports, as a SkipError, what the docker backend lacks here.
func CheckDocker(ctx context.Context, log *slog.Logger) error {
	if os.Geteuid() != 0 {
		return &SkipError{Reason: "the docker backend needs root (nsenter into container namespaces for nftables partitions)"}
	}
	if err := need("docker", "nsenter", "nft"); err != nil {
		return err
	}
	if _, err := (runner{log: log}).run(ctx, "docker", "info", "--format", "{{.ServerVersion}}"); err != nil {
		return &SkipError{Reason: "no Docker daemon answers (start dockerd): " + err.Error()}
	}
	return nil
}

// NewDocker checks the requirements and returns the backend.
func NewDocker(ctx context.Context, opts DockerOptions) (*Docker, error) {
	if err := CheckDocker(ctx, opts.Log); err != nil {
		return nil, err
	}
	r := runner{log: opts.Log}
	if opts.Nodes < 1 || opts.Nodes > 200 {
		return nil, fmt.Errorf("db: %d nodes is outside 1..200", opts.Nodes)
	}
	d := &Docker{opts: opts, r: r}
	for i := range opts.Nodes {
		ip := fmt.Sprintf("%s.%d", dockerSubnet, 11+i)
		d.nodes = append(d.nodes, Node{ID: nodeID(i), IP: ip, API: ip + ":7001", Raft: ip + ":7101"})
	}
	return d, nil
}

func (d *Docker) Name() string  { return "docker" }
func (d *Docker) Nodes() []Node { return d.nodes }

func containerName(id string) string { return Prefix + "-" + id }
func volumeName(id string) string    { return Prefix + "-" + id + "-data" }

// Setup creates the network and one container per node.
func (d *Docker) Setup(ctx context.Context) error {
	if err := CleanupDocker(ctx, d.opts.Log); err != nil {
		d.opts.Log.Warn("cleanup of leftover containers reported an error; continuing", "err", err)
	}
	if _, err := d.r.run(ctx, "docker", "network", "create", "--driver", "bridge",
		"--subnet", dockerSubnet+".0/24", "--label", RuleComment, dockerNetwork); err != nil {
		return fmt.Errorf("db: docker network: %w", err)
	}
	for _, nd := range d.nodes {
		if err := d.create(ctx, nd, nil); err != nil {
			return err
		}
	}
	return nil
}

// create makes a node's volume and container and starts it.
func (d *Docker) create(ctx context.Context, nd Node, join []string) error {
	if _, err := d.r.run(ctx, "docker", "volume", "create", "--label", RuleComment, volumeName(nd.ID)); err != nil {
		return fmt.Errorf("db: docker volume: %w", err)
	}
	args := []string{"run", "-d", "--name", containerName(nd.ID), "--hostname", nd.ID,
		"--label", RuleComment, "--network", dockerNetwork, "--ip", nd.IP,
		"-v", volumeName(nd.ID) + ":/data", d.opts.Image}
	args = append(args, serverArgs(nd, "0.0.0.0:7001", "/data", d.nodes, d.opts.ServerArgs, join)...)
	if _, err := d.r.run(ctx, "docker", args...); err != nil {
		return fmt.Errorf("db: start container %s: %w", nd.ID, err)
	}
	return nil
}

// Rejoin replaces the node's container and volume with fresh ones whose
// server starts with --join, keeping the old log in the node's log file.
func (d *Docker) Rejoin(ctx context.Context, id string, join []string) error {
	var nd Node
	for _, n := range d.nodes {
		if n.ID == id {
			nd = n
		}
	}
	if nd.ID == "" {
		return fmt.Errorf("db: no node %q", id)
	}
	d.saveLog(ctx, id, ".before-rejoin")
	if _, err := d.r.run(ctx, "docker", "rm", "-f", "-v", containerName(id)); err != nil {
		return fmt.Errorf("db: %w", err)
	}
	if _, err := d.r.run(ctx, "docker", "volume", "rm", "-f", volumeName(id)); err != nil {
		return fmt.Errorf("db: %w", err)
	}
	if err := d.create(ctx, nd, join); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applyLocked(ctx, id)
}

func (d *Docker) saveLog(ctx context.Context, id, suffix string) {
	out, err := d.r.run(ctx, "sh", "-c", "docker logs "+containerName(id)+" 2>&1")
	if err == nil && d.opts.LogDir != "" {
		_ = os.WriteFile(filepath.Join(d.opts.LogDir, id+suffix+".log"), []byte(out), 0o644)
	}
}

func (d *Docker) pid(ctx context.Context, id string) (int, error) {
	out, err := d.r.run(ctx, "docker", "inspect", "-f", "{{.State.Pid}}", containerName(id))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid == 0 {
		return 0, fmt.Errorf("db: container %s is not running", id)
	}
	return pid, nil
}

// Start restarts a killed container (the volume keeps its data) and
// re-applies the current partition to its new network namespace.
func (d *Docker) Start(ctx context.Context, id string) error {
	if _, err := d.pid(ctx, id); err == nil {
		return nil
	}
	if _, err := d.r.run(ctx, "docker", "start", containerName(id)); err != nil {
		return fmt.Errorf("db: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applyLocked(ctx, id)
}

// Kill sends SIGKILL and waits until Docker reports the container stopped.
func (d *Docker) Kill(ctx context.Context, id string) error {
	if _, err := d.pid(ctx, id); err != nil {
		return nil
	}
	if _, err := d.r.run(ctx, "docker", "kill", "-s", "KILL", containerName(id)); err != nil {
		return fmt.Errorf("db: %w", err)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := d.pid(ctx, id); err != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("db: waiting for %s to stop: %w", id, ctx.Err())
		case <-tick.C:
		}
	}
}

func (d *Docker) Pause(ctx context.Context, id string) error {
	_, err := d.r.run(ctx, "docker", "kill", "-s", "STOP", containerName(id))
	return err
}

func (d *Docker) Resume(ctx context.Context, id string) error {
	_, err := d.r.run(ctx, "docker", "kill", "-s", "CONT", containerName(id))
	return err
}

// SetDrops applies the partition inside every running container.
func (d *Docker) SetDrops(ctx context.Context, drops []Drop) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.drops = append([]Drop(nil), drops...)
	for _, nd := range d.nodes {
		if err := d.applyLocked(ctx, nd.ID); err != nil {
			return err
		}
	}
	return nil
}

func (d *Docker) applyLocked(ctx context.Context, id string) error {
	pid, err := d.pid(ctx, id)
	if err != nil {
		// A stopped container has no namespace; Start re-applies the rules.
		return nil //nolint:nilerr // not an error here, see above
	}
	var ips []string
	for _, src := range dropsBySink(d.drops)[id] {
		for _, nd := range d.nodes {
			if nd.ID == src {
				ips = append(ips, nd.IP)
			}
		}
	}
	if _, err := d.r.runIn(ctx, nftScript(ips), "nsenter", "-t", strconv.Itoa(pid), "-n", "nft", "-f", "-"); err != nil {
		return fmt.Errorf("db: partition %s: %w", id, err)
	}
	return nil
}

// Teardown saves every container's log and removes containers, volumes
// and the network.
func (d *Docker) Teardown(ctx context.Context) error {
	for _, nd := range d.nodes {
		_ = d.Resume(ctx, nd.ID)
		d.saveLog(ctx, nd.ID, "")
	}
	return CleanupDocker(ctx, d.opts.Log)
}
