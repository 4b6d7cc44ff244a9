// Package report writes what a run found: results.json (Results),
// report.html (summary, faults, unavailability, plots, and porcupine's
// visualisation of every key that failed), latency.png and rate.png
// (gonum/plot, fault intervals shaded), and the progress line shown while
// the run goes.
package report
