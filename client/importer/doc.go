// Package importer reads files of opt-out records (CSV with a header row,
// or JSON lines) and writes them to a cluster in batches (SetBatch), with
// the same validation as Set, a line-numbered report of every line that is
// bad or refused, and idempotency keys derived from the file, so an
// interrupted import run again with the same file and settings resumes
// without writing any batch twice. It is what `optoutctl import` runs.
//
// Reader parses; Run writes (or, with DryRun, asks the cluster what would
// be written). The columns, their limits and every choice made here are in
// docs/import.md.
package importer
