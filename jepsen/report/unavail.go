package report

import (
	"sort"

	"github.com/optoutd/optoutd/jepsen/history"
	"github.com/optoutd/optoutd/jepsen/nemesis"
)

// FaultUnavailability is, for one fault, the longest stretch without a
// successful write and without a successful read, measured from the fault's
// start until Grace after it healed (or the end of the workload).
type FaultUnavailability struct {
	ID          int     `json:"id"`
	Kind        string  `json:"kind"`
	WindowS     float64 `json:"window_s"`
	WriteGapS   float64 `json:"max_write_gap_s"`
	ReadGapS    float64 `json:"max_read_gap_s"`
	FaultHeldS  float64 `json:"fault_held_s"`
	WritesInWin int     `json:"ok_writes_in_window"`
}

// KindUnavailability aggregates one fault kind.
type KindUnavailability struct {
	Faults        int     `json:"faults"`
	MaxWriteGapS  float64 `json:"max_write_gap_s"`
	MeanWriteGapS float64 `json:"mean_write_gap_s"`
	MaxReadGapS   float64 `json:"max_read_gap_s"`
	MeanReadGapS  float64 `json:"mean_read_gap_s"`
}

// Unavailability is per fault and per kind.
type Unavailability struct {
	GraceS   float64                       `json:"grace_after_heal_s"`
	PerFault []FaultUnavailability         `json:"per_fault"`
	ByKind   map[string]KindUnavailability `json:"by_kind"`
}

// successTimes returns the sorted completion times of successful writes
// (acknowledged or a CAS conflict, both went through the log) and reads.
func successTimes(ops []history.Op) (writes, reads []int64) {
	for _, op := range ops {
		if op.Final {
			continue
		}
		switch {
		case op.Type.IsWrite() && (op.Outcome == history.OK || op.Outcome == history.Mismatch):
			writes = append(writes, op.Return)
		case op.Type.IsRead() && (op.Outcome == history.OK || op.Outcome == history.NotFound):
			reads = append(reads, op.Return)
		}
	}
	sort.Slice(writes, func(i, j int) bool { return writes[i] < writes[j] })
	sort.Slice(reads, func(i, j int) bool { return reads[i] < reads[j] })
	return writes, reads
}

// maxGap is the longest interval inside [from, to] containing none of ts.
func maxGap(ts []int64, from, to int64) (gap int64, n int) {
	i := sort.Search(len(ts), func(i int) bool { return ts[i] >= from })
	prev := from
	for ; i < len(ts) && ts[i] <= to; i++ {
		gap = max(gap, ts[i]-prev)
		prev = ts[i]
		n++
	}
	return max(gap, to-prev), n
}

// ComputeUnavailability measures every fault; workloadEnd bounds windows.
func ComputeUnavailability(ops []history.Op, faults []nemesis.Record, grace, workloadEnd int64) Unavailability {
	writes, reads := successTimes(ops)
	u := Unavailability{GraceS: secs(grace), ByKind: map[string]KindUnavailability{}}
	sums := map[string][2]float64{}
	for _, f := range faults {
		end := min(f.End+grace, workloadEnd)
		if end <= f.Start {
			end = f.Start
		}
		wg, nw := maxGap(writes, f.Start, end)
		rg, _ := maxGap(reads, f.Start, end)
		fu := FaultUnavailability{ID: f.ID, Kind: f.Kind, WindowS: secs(end - f.Start), WriteGapS: secs(wg),
			ReadGapS: secs(rg), FaultHeldS: secs(f.End - f.Start), WritesInWin: nw}
		u.PerFault = append(u.PerFault, fu)
		k := u.ByKind[f.Kind]
		k.Faults++
		k.MaxWriteGapS = max(k.MaxWriteGapS, fu.WriteGapS)
		k.MaxReadGapS = max(k.MaxReadGapS, fu.ReadGapS)
		u.ByKind[f.Kind] = k
		s := sums[f.Kind]
		sums[f.Kind] = [2]float64{s[0] + fu.WriteGapS, s[1] + fu.ReadGapS}
	}
	for kind, k := range u.ByKind {
		k.MeanWriteGapS = sums[kind][0] / float64(k.Faults)
		k.MeanReadGapS = sums[kind][1] / float64(k.Faults)
		u.ByKind[kind] = k
	}
	return u
}
