package offline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/optoutd/optoutd/internal/durable"
)

// stage is a temporary directory whose contents become the data directory
// only in commit. If the data directory does not exist, the stage is a
// hidden sibling renamed onto it (one atomic rename). If it exists and is
// empty (a mount point cannot be replaced), the stage is hidden inside it
// and its entries are moved in, raft.db first and snapshots/ last; abort
// removes whatever was moved.
type stage struct {
	target, dir string
	exists      bool
	created     []string // parent directories this stage created
	moved       []string
}

func newStage(target string) (*stage, error) {
	st := &stage{target: target}
	fi, err := os.Stat(target)
	switch {
	case err == nil && !fi.IsDir():
		return nil, fmt.Errorf("--data-dir: %s is not a directory", target)
	case err == nil:
		ents, err := os.ReadDir(target)
		if err != nil {
			return nil, fmt.Errorf("--data-dir: %w", err)
		}
		if len(ents) > 0 {
			var names []string
			for _, e := range ents[:min(len(ents), 3)] {
				names = append(names, e.Name())
			}
			return nil, fmt.Errorf("--data-dir: %s is not empty (holds %s): restore only seeds a new node; give it a new or empty directory", target, strings.Join(names, ", "))
		}
		st.exists = true
		st.dir, err = os.MkdirTemp(target, ".restore-")
		return st, err
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	parent := filepath.Dir(target)
	for p := parent; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		st.created = append(st.created, p)
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	st.dir, err = os.MkdirTemp(parent, "."+filepath.Base(target)+".restore-")
	if err != nil {
		st.abort()
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	return st, nil
}

func (st *stage) commit() error {
	if !st.exists {
		if err := os.Rename(st.dir, st.target); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		st.dir = ""
		return durable.SyncDir(filepath.Dir(st.target))
	}
	for _, name := range []string{"raft.db", "fsm.db", "snapshots"} {
		to := filepath.Join(st.target, name)
		if err := os.Rename(filepath.Join(st.dir, name), to); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		st.moved = append(st.moved, to)
	}
	if err := os.Remove(st.dir); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	st.dir = ""
	return durable.SyncDir(st.target)
}

func (st *stage) abort() {
	if st.dir != "" {
		_ = os.RemoveAll(st.dir)
	}
	for _, p := range st.moved {
		_ = os.RemoveAll(p)
	}
	for _, p := range st.created { // deepest first
		_ = os.Remove(p)
	}
}
