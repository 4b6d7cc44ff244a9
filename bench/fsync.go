package main

import (
	"os"
	"syscall"
	"time"
)

// FsyncProbe is this machine's fsync floor: the latency of a 4 KiB
// overwrite followed by fdatasync (what a bbolt commit and etcd's WAL do
// per sync) in a file on the data dirs' filesystem, measured alone
// before the clusters start. No store on this disk can commit a write
// faster than this.
type FsyncProbe struct {
	Dir     string  `json:"dir"`
	Samples int     `json:"samples"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MeanMs  float64 `json:"mean_ms"`
	MaxMs   float64 `json:"max_ms"`
	Error   string  `json:"error,omitempty"`
}

const (
	probeBlock   = 4096
	probeBlocks  = 256
	probeSamples = 200
	probeLimit   = 3 * time.Second
)

// probeFsync measures up to n syncs in a temp file under dir, for at most
// limit.
func probeFsync(dir string, n int, limit time.Duration) FsyncProbe {
	p := FsyncProbe{Dir: dir}
	f, err := os.CreateTemp(dir, "bench-fsync-probe-")
	if err != nil {
		p.Error = err.Error()
		return p
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, probeBlock)
	// Allocate the file first, so the probe measures overwrites (no size
	// change, like a preallocated WAL segment or a bbolt page).
	for i := 0; i < probeBlocks; i++ {
		if _, err := f.Write(block); err != nil {
			p.Error = err.Error()
			return p
		}
	}
	if err := f.Sync(); err != nil {
		p.Error = err.Error()
		return p
	}
	var lat []time.Duration
	start := time.Now()
	for i := 0; i < n && time.Since(start) < limit; i++ {
		block[0] = byte(i)
		t0 := time.Now()
		if _, err := f.WriteAt(block, int64(i%probeBlocks)*probeBlock); err != nil {
			p.Error = err.Error()
			break
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			p.Error = err.Error()
			break
		}
		lat = append(lat, time.Since(t0))
	}
	s := summarizeLatency(lat)
	p.Samples, p.P50Ms, p.P99Ms, p.MeanMs, p.MaxMs = s.Count, s.P50Ms, s.P99Ms, s.MeanMs, s.MaxMs
	return p
}
