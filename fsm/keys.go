package fsm

import (
	"encoding/binary"
	"fmt"

	"github.com/optoutd/optoutd/command"
)

// recordKey encodes (subject, purpose) so that all of a subject's records
// are adjacent and no two keys collide: uvarint(len(subject)) | subject |
// purpose. Purposes cannot contain the bytes of a length prefix ambiguity
// because the length is explicit.
func recordKey(subject, purpose string) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(subject)+len(purpose))
	b = binary.AppendUvarint(b, uint64(len(subject)))
	b = append(b, subject...)
	return append(b, purpose...)
}

// splitRecordKey reverses recordKey.
func splitRecordKey(k []byte) (subject, purpose string, err error) {
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) < n {
		return "", "", fmt.Errorf("%w: bad record key %x", command.ErrMalformed, k)
	}
	return string(k[w : w+int(n)]), string(k[w+int(n):]), nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func readU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
