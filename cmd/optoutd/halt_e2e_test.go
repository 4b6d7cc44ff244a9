package main

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/command"
)

// olderBinary builds optoutd as a release that reads command formats up to
// format-1 only (command.olderRelease), into the test's temporary directory.
func olderBinary(t *testing.T) string {
	t.Helper()
	binary(t) // skips with -short
	path := filepath.Join(t.TempDir(), "optoutd-older")
	flag := "-X github.com/optoutd/optoutd/command.olderRelease=" + strconv.Itoa(int(command.FormatVersion)-1)
	if out, err := exec.Command("go", "build", "-ldflags", flag, "-o", path, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", flag, err, out)
	}
	return path
}

// stopBySIGTERM sends SIGTERM and waits for the process to exit.
func stopBySIGTERM(t *testing.T, p *proc, within time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s did not exit %v after SIGTERM\n%s", p.id, within, tail(p.log.String(), 3000))
	}
	p.cmd = nil
}

// TestHaltedNodeStopsOnSIGTERMAndRecoversOnAFixedBinary: one node runs a
// release that cannot read the cluster's newest command format. It halts
// on the first such entry (it never skips it) and says so in /readyz;
// SIGTERM stops it; restarted on a build that can read the entry, it
// applies it and catches up. This is the recovery the docs describe:
// "stop it, upgrade the binary".
func TestHaltedNodeStopsOnSIGTERMAndRecoversOnAFixedBinary(t *testing.T) {
	older := olderBinary(t)
	pc := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	leader := pc.leader(ctx)
	lc := pc.clientOf(leader)
	if _, err := lc.Set(ctx, &optoutv1.SetRequest{SubjectId: "before", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT}); err != nil {
		t.Fatal(err)
	}
	victim := pc.followers(leader)[0]
	stopBySIGTERM(t, victim, 20*time.Second)
	victim.bin = older
	pc.start(victim)

	// Every command this cluster writes is of the current format.
	if _, err := lc.Set(ctx, &optoutv1.SetRequest{SubjectId: "after", Purpose: "analytics", State: optoutv1.State_STATE_OPTED_OUT}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, code := readyz(victim.api)
		if code == http.StatusServiceUnavailable && strings.Contains(body, "halted") {
			t.Logf("%s on the older build: %d %s", victim.id, code, strings.TrimSpace(body))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on the older build never reported a halt (last /readyz: %d %q)\n%s", victim.id, code, body, tail(victim.log.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(victim.log.String(), "state machine halted") {
		t.Errorf("the halt was not logged:\n%s", tail(victim.log.String(), 2000))
	}
	stopBySIGTERM(t, victim, 30*time.Second)

	victim.bin = ""
	pc.start(victim)
	pc.waitReady(30 * time.Second)
	g, err := pc.clientOf(victim).Get(ctx, &optoutv1.GetRequest{SubjectId: "after", Purpose: "analytics"})
	if err != nil || g.Record.GetState() != optoutv1.State_STATE_OPTED_OUT {
		t.Fatalf("after the upgrade %s reads %v, %v", victim.id, g, err)
	}
}

func readyz(api string) (string, int) {
	resp, err := http.Get("http://" + api + "/readyz")
	if err != nil {
		return err.Error(), 0
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}
