package main

import (
	"slices"
	"strings"
	"testing"
)

func TestPlanCellsOrder(t *testing.T) {
	c := DefaultConfig()
	c.Workloads = []string{wlMixed, wlFailover, wlCheck} // any order asked
	c.Dists = []string{distZipf, distUniform}
	c.Concurrency = []int{1, 64}
	var got []string
	for _, cell := range planCells(c) {
		got = append(got, cell.Key())
	}
	want := []string{"check/uniform/1", "check/uniform/64", "check/zipf/1", "check/zipf/64",
		"mixed/uniform/1", "mixed/uniform/64", "mixed/zipf/1", "mixed/zipf/64"}
	if !slices.Equal(got, want) {
		t.Errorf("planCells = %v, want %v", got, want)
	}
	if n := len(planCells(DefaultConfig())); n != 5*2*4 {
		t.Errorf("the default sweep has %d cells, want 40", n)
	}
	c.Workloads = []string{wlFailover}
	if cells := planCells(c); len(cells) != 0 {
		t.Errorf("failover alone planned cells %v", cells)
	}
}

// In every round each system goes first in half the cells (and never in
// two cells in a row), and in each cell the first system alternates from
// round to round.
func TestCellOrderAlternates(t *testing.T) {
	systems := []string{sysOptoutd, sysEtcd}
	const cells = 40
	for round := 1; round <= 4; round++ {
		first := map[string]int{}
		for i := 0; i < cells; i++ {
			o := cellOrder(systems, round, i)
			if len(o) != 2 || o[0] == o[1] {
				t.Fatalf("cellOrder(%d, %d) = %v", round, i, o)
			}
			first[o[0]]++
			if i > 0 && cellOrder(systems, round, i-1)[0] == o[0] {
				t.Errorf("round %d: %s first in cells %d and %d", round, o[0], i-1, i)
			}
			if next := cellOrder(systems, round+1, i); next[0] == o[0] {
				t.Errorf("cell %d: %s first in rounds %d and %d", i, o[0], round, round+1)
			}
		}
		if first[sysOptoutd] != cells/2 || first[sysEtcd] != cells/2 {
			t.Errorf("round %d: first counts %v", round, first)
		}
	}
	if systems[0] != sysOptoutd {
		t.Error("cellOrder changed its input")
	}
	if o := cellOrder([]string{sysOptoutd}, 2, 1); !slices.Equal(o, []string{sysOptoutd}) {
		t.Errorf("one system: %v", o)
	}
}

func TestCellKeyAndSeries(t *testing.T) {
	c := Cell{Workload: wlBatch, Dist: distZipf, Concurrency: 256}
	if c.Key() != "batch/zipf/256" || c.Series() != "batch/zipf" {
		t.Errorf("Key %q, Series %q", c.Key(), c.Series())
	}
	s := seriesOf(planCells(DefaultConfig()))
	names := make([]string, len(s))
	for i, c := range s {
		names[i] = c.Series()
	}
	if got := strings.Join(names, " "); got != "check/uniform check/zipf batch/uniform batch/zipf set/uniform set/zipf cas/uniform cas/zipf mixed/uniform mixed/zipf" {
		t.Errorf("seriesOf = %s", got)
	}
}
