// Command bench measures optoutd against etcd in the same run on the same
// machine and reports speed as ratios optoutd/etcd with their spread
// across rounds. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "etcd-node" {
		os.Exit(etcdNodeMain(os.Args[2:], os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "report" {
		os.Exit(reportMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run does the whole benchmark. Every node process and temp dir it makes is
// gone when it returns, also after Ctrl-C (which cancels ctx).
func run(ctx context.Context, cfg Config, stdout io.Writer, stderr *os.File) error {
	res := &Results{
		Tool: "optoutd bench", Started: time.Now(), Host: hostInfo(), Config: cfg,
		EtcdVersion: etcdServerVersion(), Settings: map[string]map[string]string{},
	}
	prog := newProgress(stderr)
	defer prog.close()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	builds, cleanup, err := buildAll(ctx, cfg, prog)
	defer cleanup()
	if err != nil {
		return err
	}
	res.OptoutdCommit = builds[sysOptoutd].Commit
	res.BaseCommit = builds[sysOptoutdBase].Commit
	outDir := filepath.Join(cfg.OutDir, res.Started.Format("20060102-150405"))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if res.BaseCommit != "" {
		prog.logf("[setup] optoutd %s, optoutd-base %s (%s); results in %s", res.OptoutdCommit, res.BaseCommit, cfg.BaseRev, outDir)
	} else {
		prog.logf("[setup] optoutd %s, etcd %s; results in %s", res.OptoutdCommit, res.EtcdVersion, outDir)
	}
	for _, s := range cfg.Systems {
		if sys, err := newSystem(s, cfg, builds, self); err == nil {
			res.Settings[s] = sys.Settings()
		}
	}

	r := newRunner(cfg, prog, builds, self)
	runErr := r.runAll(ctx, res)
	res.Finished = time.Now()
	res.WallSeconds = res.Finished.Sub(res.Started).Seconds()
	res.Host.LoadAvgTo = readTrim("/proc/loadavg")
	res.Complete = runErr == nil
	if runErr != nil {
		res.Error = runErr.Error()
	}
	res.summarize()

	var charts []string
	if !cfg.NoCharts {
		prog.step("[report]", "drawing charts", 0, nil)
		charts, err = writeCharts(outDir, res)
		if err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	if err := writeReport(outDir, res, charts); err != nil {
		return errors.Join(runErr, err)
	}
	prog.close()
	fmt.Fprintln(stdout, oneLine(res, outDir))
	return runErr
}

// buildAll builds (or takes from --optoutd-bin) the optoutd binary of
// each optoutd system that runs. The returned cleanup removes them; it is
// never nil.
func buildAll(ctx context.Context, cfg Config, prog *progress) (map[string]optoutdBuild, func(), error) {
	builds := map[string]optoutdBuild{}
	var cleanups []func()
	cleanup := func() {
		for _, c := range cleanups {
			c()
		}
	}
	// Pin both revisions before building anything.
	revs := map[string]string{}
	if slices.Contains(cfg.Systems, sysOptoutd) && cfg.OptoutdBin == "" {
		r, err := pinRev(ctx, cfg.Repo, cfg.OptoutdRev, "--optoutd-rev")
		if err != nil {
			return nil, cleanup, err
		}
		revs[sysOptoutd] = r
	}
	if slices.Contains(cfg.Systems, sysOptoutdBase) {
		r, err := pinRev(ctx, cfg.Repo, cfg.BaseRev, "--base-rev")
		if err != nil {
			return nil, cleanup, err
		}
		revs[sysOptoutdBase] = r
	}
	if slices.Contains(cfg.Systems, sysOptoutd) && cfg.OptoutdBin != "" {
		builds[sysOptoutd] = optoutdBuild{Bin: cfg.OptoutdBin, Commit: "binary " + cfg.OptoutdBin}
	}
	for _, sys := range []string{sysOptoutd, sysOptoutdBase} {
		rev, ok := revs[sys]
		if !ok {
			continue
		}
		flagName, asked := "--optoutd-rev", cfg.OptoutdRev
		if sys == sysOptoutdBase {
			flagName, asked = "--base-rev", cfg.BaseRev
		}
		commit := gitDescribe(cfg.Repo, rev)
		prog.step("[setup]", fmt.Sprintf("building cmd/optoutd at %s = %s (%s)", asked, commit, sys), 0, nil)
		b, c, err := buildOptoutd(ctx, cfg.Repo, rev, flagName)
		if err != nil {
			return nil, cleanup, err
		}
		cleanups = append(cleanups, c)
		builds[sys] = optoutdBuild{Bin: b, Commit: commit}
	}
	return builds, cleanup, nil
}

// reportMain is `bench report DIR`: redraw the charts and rewrite
// summary.md and bench.txt from DIR/results.json (e.g. after changing the
// report code), without running anything.
func reportMain(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: bench report RESULTS_DIR")
		return 2
	}
	dir := args[0]
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		fmt.Fprintln(stderr, "bench report:", err)
		return 1
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		fmt.Fprintln(stderr, "bench report: results.json:", err)
		return 1
	}
	res.summarize()
	charts, err := writeCharts(dir, &res)
	if err == nil {
		err = writeReport(dir, &res, charts)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench report:", err)
		return 1
	}
	fmt.Fprintln(stdout, oneLine(&res, dir))
	return 0
}
