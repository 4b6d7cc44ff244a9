package cluster

import (
	"fmt"
	"slices"
	"sync"

	"github.com/hashicorp/raft"
)

// configLog is the Raft log store as hashicorp/raft sees it, keeping track
// of where the configuration entries are. hashicorp/raft v1.7.3 does not
// say at which index its latest configuration was written:
// GetConfiguration().Index() and Stats()["latest_configuration_index"] are
// always 0 (the future fills in only the servers). Membership decisions
// need that index: to tell a committed removal from one still in flight,
// and to pass as prevIndex so that a change judged against one
// configuration is refused if another change landed first.
//
// Raft's latest configuration is the newest configuration entry in its log,
// or, when the log holds none after the last snapshot, the snapshot's. This
// wrapper sees every append and every deletion (suffix truncation on a
// follower, prefix compaction after a snapshot), so it knows the former;
// the snapshot store knows the latter.
type configLog struct {
	raft.LogStore

	mu      sync.Mutex
	indexes []uint64 // configuration entries in the log, ascending
}

// newConfigLog wraps s and finds the configuration entries already in it
// after the snapshot at snapIndex, as hashicorp/raft does when it starts.
func newConfigLog(s raft.LogStore, snapIndex uint64) (*configLog, error) {
	c := &configLog{LogStore: s}
	first, err := s.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("cluster: raft log first index: %w", err)
	}
	last, err := s.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("cluster: raft log last index: %w", err)
	}
	for i := max(first, snapIndex+1); i <= last && i > 0; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			return nil, fmt.Errorf("cluster: read raft log at %d: %w", i, err)
		}
		if l.Type == raft.LogConfiguration {
			c.indexes = append(c.indexes, i)
		}
	}
	return c, nil
}

func (c *configLog) StoreLog(l *raft.Log) error {
	return c.StoreLogs([]*raft.Log{l})
}

func (c *configLog) StoreLogs(logs []*raft.Log) error {
	if err := c.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		if l.Type != raft.LogConfiguration {
			continue
		}
		// An index is stored again only after a deletion took it away, but
		// keep the list sorted and free of duplicates whatever happens.
		if i, found := slices.BinarySearch(c.indexes, l.Index); !found {
			c.indexes = slices.Insert(c.indexes, i, l.Index)
		}
	}
	return nil
}

func (c *configLog) DeleteRange(minIdx, maxIdx uint64) error {
	if err := c.LogStore.DeleteRange(minIdx, maxIdx); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.indexes = slices.DeleteFunc(c.indexes, func(i uint64) bool { return i >= minIdx && i <= maxIdx })
	return nil
}

// latest is the index of the newest configuration entry still in the log,
// or 0 when there is none.
func (c *configLog) latest() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.indexes) == 0 {
		return 0
	}
	return c.indexes[len(c.indexes)-1]
}

// latestConfigIndex is the index at which this node's latest Raft
// configuration (committed or not) was written.
func (n *Node) latestConfigIndex() uint64 {
	return max(n.configLog.latest(), n.snapStore.newestConfigIndex())
}

// latestConfiguration returns the latest configuration's servers and the
// index it was written at, read so that the two belong together.
func (n *Node) latestConfiguration() ([]raft.Server, uint64, error) {
	for {
		before := n.latestConfigIndex()
		cf := n.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			return nil, 0, err
		}
		if after := n.latestConfigIndex(); after == before {
			return cf.Configuration().Servers, before, nil
		}
	}
}
