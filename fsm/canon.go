package fsm

import (
	"encoding/binary"
)

// canon is a minimal canonical encoding for values that are hashed: every
// field in a fixed order, strings and bytes length-prefixed, integers
// big-endian. Unlike protobuf's "deterministic" marshalling it is fixed by
// this code, not by a library version, so hashes stay comparable across
// upgrades forever.
type canon struct{ b []byte }

func (c *canon) bytes(v []byte) *canon {
	c.b = binary.AppendUvarint(c.b, uint64(len(v)))
	c.b = append(c.b, v...)
	return c
}

func (c *canon) str(v string) *canon {
	c.b = binary.AppendUvarint(c.b, uint64(len(v)))
	c.b = append(c.b, v...)
	return c
}

func (c *canon) u64(v uint64) *canon {
	c.b = binary.BigEndian.AppendUint64(c.b, v)
	return c
}

func (c *canon) i64(v int64) *canon { return c.u64(uint64(v)) }

func (c *canon) boolean(v bool) *canon {
	if v {
		return c.u64(1)
	}
	return c.u64(0)
}
