package durable

import "os"

// SyncDir fsyncs the directory dir, so that entries created, renamed or
// removed in it are on disk, not only the files' contents.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
