package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc CPU times (100 on Linux).
const clockTicks = 100

// cpuSample is the machine's and some processes' CPU time at one moment.
type cpuSample struct {
	at    time.Time
	busy  uint64         // ticks, all CPUs, not idle or iowait
	procs map[int]uint64 // pid -> utime+stime ticks
	// ioSome: µs in which some task waited for I/O (PSI); ok false
	// without /proc/pressure/io.
	ioSome   uint64
	ioSomeOK bool
}

// CPUUsage is where the CPU went during one workload run.
type CPUUsage struct {
	// NodeCores: CPU cores the 3 node processes used on average.
	NodeCores float64 `json:"node_cores"`
	// BenchCores: cores the bench process (the clients) used.
	BenchCores float64 `json:"bench_cores"`
	// PeerCores: cores the other system's idle nodes used meanwhile
	// (heartbeats, background commits).
	PeerCores float64 `json:"peer_cores"`
	// OtherCores: cores used by everything else on the machine (other
	// people's work): the noise.
	OtherCores float64 `json:"other_cores"`
	// NodeCPUPerOpUs: node CPU time per successful request, in µs.
	NodeCPUPerOpUs float64 `json:"node_cpu_per_op_us"`
	// IOPressurePct: share of the time in which some task on the machine
	// was stalled waiting for I/O, from /proc/pressure/io: the nodes' own
	// fsyncs and anyone else's disk load, which slows fsync-heavy nodes
	// without showing as CPU. nil if the kernel has no PSI.
	IOPressurePct *float64 `json:"io_pressure_some_pct,omitempty"`
}

func readCPU(pids []int) cpuSample {
	s := cpuSample{at: time.Now(), procs: map[int]uint64{}}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		for i := 1; i < len(f) && i <= 8; i++ {
			if i == 4 || i == 5 {
				continue
			}
			v, _ := strconv.ParseUint(f[i], 10, 64)
			s.busy += v
		}
	}
	if b, err := os.ReadFile("/proc/pressure/io"); err == nil {
		s.ioSome, s.ioSomeOK = parsePSISome(string(b))
	}
	for _, pid := range pids {
		if t, ok := procTicks(pid); ok {
			s.procs[pid] = t
		}
	}
	return s
}

// parsePSISome returns total= of the "some" line of a /proc/pressure file
// (µs).
func parsePSISome(s string) (uint64, bool) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "some" {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "total="); ok {
				n, err := strconv.ParseUint(v, 10, 64)
				return n, err == nil
			}
		}
	}
	return 0, false
}

// procTicks is utime+stime of a process, all threads.
func procTicks(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	k, err2 := strconv.ParseUint(f[12], 10, 64)
	return u + k, err1 == nil && err2 == nil
}

// cpuUsage compares two samples; nodes are the measured system's
// processes, peers the idle other system's; ops is the number of
// successful requests in between.
func cpuUsage(a, b cpuSample, nodes, peers []int, self int, ops int64) CPUUsage {
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 {
		return CPUUsage{}
	}
	delta := func(pid int) float64 {
		x, okA := a.procs[pid]
		y, okB := b.procs[pid]
		if !okA || !okB || y < x {
			return 0
		}
		return float64(y-x) / clockTicks
	}
	var node float64
	for _, p := range nodes {
		node += delta(p)
	}
	var peer float64
	for _, p := range peers {
		peer += delta(p)
	}
	bench := delta(self)
	busy := float64(b.busy-a.busy) / clockTicks
	u := CPUUsage{NodeCores: node / secs, BenchCores: bench / secs, PeerCores: peer / secs, OtherCores: max(0, busy-node-bench-peer) / secs}
	if ops > 0 {
		u.NodeCPUPerOpUs = node / float64(ops) * 1e6
	}
	if a.ioSomeOK && b.ioSomeOK && b.ioSome >= a.ioSome {
		pct := float64(b.ioSome-a.ioSome) / 1e6 / secs * 100
		u.IOPressurePct = &pct
	}
	return u
}
