package main

import (
	"math"
	"os"
	"testing"
	"time"
)

func TestCPUUsage(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := cpuSample{at: t0, busy: 1000, procs: map[int]uint64{1: 100, 2: 50, 7: 0, 9: 10}}
	b := cpuSample{at: t0.Add(10 * time.Second), busy: 2000, procs: map[int]uint64{1: 300, 2: 150, 7: 20, 9: 60}}
	got := cpuUsage(a, b, []int{1, 2}, []int{7}, 9, 1000)
	// Nodes: (200+100) ticks = 3 s over 10 s; the idle peer 0.2 s; bench
	// 0.5 s; the machine was busy 10 s in all, so others used 6.3 s;
	// 3 s / 1000 ops = 3000 µs.
	want := CPUUsage{NodeCores: 0.3, BenchCores: 0.05, PeerCores: 0.02, OtherCores: 0.63, NodeCPUPerOpUs: 3000}
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	if !eq(got.NodeCores, want.NodeCores) || !eq(got.BenchCores, want.BenchCores) || !eq(got.PeerCores, want.PeerCores) ||
		!eq(got.OtherCores, want.OtherCores) || !eq(got.NodeCPUPerOpUs, want.NodeCPUPerOpUs) {
		t.Errorf("cpuUsage = %+v, want %+v", got, want)
	}
	// A process missing from one sample (killed) counts as zero.
	delete(b.procs, 2)
	if got := cpuUsage(a, b, []int{1, 2}, nil, 9, 0); !eq(got.NodeCores, 0.2) || got.NodeCPUPerOpUs != 0 {
		t.Errorf("with a vanished node: %+v", got)
	}
}

func TestReadCPUSeesThisProcess(t *testing.T) {
	s := readCPU([]int{os.Getpid()})
	if _, ok := s.procs[os.Getpid()]; !ok {
		t.Skip("no /proc here")
	}
	if s.busy == 0 {
		t.Error("machine busy time is 0")
	}
}

func TestParsePSISome(t *testing.T) {
	in := "some avg10=40.59 avg60=50.13 avg300=52.09 total=1872991591\nfull avg10=0.52 avg60=2.79 avg300=5.95 total=307056755\n"
	if v, ok := parsePSISome(in); !ok || v != 1872991591 {
		t.Errorf("parsePSISome = %d, %v; want 1872991591, true", v, ok)
	}
	for _, bad := range []string{"", "full avg10=0 total=5\n", "some avg10=1 total=x\n"} {
		if v, ok := parsePSISome(bad); ok {
			t.Errorf("parsePSISome(%q) = %d, true; want false", bad, v)
		}
	}
	a := cpuSample{at: time.Unix(0, 0), ioSome: 1_000_000, ioSomeOK: true}
	b := cpuSample{at: time.Unix(4, 0), ioSome: 3_000_000, ioSomeOK: true}
	u := cpuUsage(a, b, nil, nil, 0, 0)
	if u.IOPressurePct == nil || *u.IOPressurePct != 50 {
		t.Errorf("IOPressurePct = %v, want 50 (2 s stalled in 4 s)", u.IOPressurePct)
	}
	b.ioSomeOK = false
	if u := cpuUsage(a, b, nil, nil, 0, 0); u.IOPressurePct != nil {
		t.Errorf("IOPressurePct without PSI = %v, want nil", *u.IOPressurePct)
	}
}
