package main

import (
	"fmt"
	"slices"
)

// Cell is one point of the sweep: a throughput workload with a key
// distribution at one concurrency. Every system runs it back to back.
type Cell struct {
	Workload    string `json:"workload"`
	Dist        string `json:"dist"`
	Concurrency int    `json:"concurrency"`
}

// Key names the cell in summaries and charts, e.g. "check/zipf/64".
func (c Cell) Key() string { return fmt.Sprintf("%s/%s/%d", c.Workload, c.Dist, c.Concurrency) }

// Series names the cell's line in a chart: workload and distribution.
func (c Cell) Series() string { return c.Workload + "/" + c.Dist }

// planCells lists one round's cells in the order they run: workloads in
// their fixed order (reads before the writes that grow the data), then
// each distribution, then the concurrencies from low to high.
func planCells(c Config) []Cell {
	var cells []Cell
	for _, wl := range throughputWorkloads {
		if !c.has(wl) {
			continue
		}
		for _, d := range allDists {
			if !slices.Contains(c.Dists, d) {
				continue
			}
			for _, n := range c.Concurrency {
				cells = append(cells, Cell{Workload: wl, Dist: d, Concurrency: n})
			}
		}
	}
	return cells
}

// cellOrder is which system goes first in cell i (0-based) of round r
// (1-based): it alternates from cell to cell, and from round to round for
// the same cell, so neither system always measures second (warm caches,
// drift, the other cluster's leftover work) in a cell.
func cellOrder(systems []string, round, i int) []string {
	order := slices.Clone(systems)
	if (round+i)%2 == 0 {
		slices.Reverse(order)
	}
	return order
}

// roundOrder alternates the order of whole-system steps (start-up,
// preload, failover) from round to round (ABBA...).
func roundOrder(systems []string, round int) []string {
	order := slices.Clone(systems)
	if round%2 == 0 {
		slices.Reverse(order)
	}
	return order
}

// throughputOf lists the throughput workloads asked for, in run order.
func (c *Config) throughputOf() []string {
	var out []string
	for _, wl := range throughputWorkloads {
		if c.has(wl) {
			out = append(out, wl)
		}
	}
	return out
}
