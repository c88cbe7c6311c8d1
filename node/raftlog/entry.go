package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/hashicorp/raft"
)

// Entry format, version 1. Every integer is big-endian.
//
//	offset  size  field
//	0       1     format version (1)
//	1       8     index
//	9       8     term
//	17      1     type (raft.LogType)
//	18      8     appended_at, seconds since the Unix epoch (int64)
//	26      4     appended_at, nanoseconds within the second (< 1e9)
//	30      4     len(data) = n
//	34      n     data
//	34+n    4     len(extensions) = m
//	38+n    m     extensions
//	38+n+m  4     CRC-32C (Castagnoli) of every byte before it
//
// The zero time.Time is stored as its own seconds and nanoseconds and
// decodes to the zero value again, so a log that was never stamped stays
// unstamped.
const (
	entryVersion  = 1
	entryFixedLen = 1 + 8 + 8 + 1 + 8 + 4 + 4 + 4 + 4 // all but data and extensions
	crcLen        = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroSec is time.Time{}.Unix(): the zero time, kept as it is.
var zeroSec = time.Time{}.Unix()

// errEntry is the cause inside every decoding error, for errors.Is.
var errEntry = errors.New("malformed log entry")

// encodeEntry appends the encoded form of l to dst and returns it.
func encodeEntry(dst []byte, l *raft.Log) ([]byte, error) {
	if len(l.Data) > math.MaxUint32 || len(l.Extensions) > math.MaxUint32 {
		return dst, fmt.Errorf("log entry %d: data or extensions longer than 4 GiB", l.Index)
	}
	start := len(dst)
	dst = append(dst, entryVersion)
	dst = binary.BigEndian.AppendUint64(dst, l.Index)
	dst = binary.BigEndian.AppendUint64(dst, l.Term)
	dst = append(dst, byte(l.Type))
	dst = binary.BigEndian.AppendUint64(dst, uint64(l.AppendedAt.Unix()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(l.AppendedAt.Nanosecond()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(l.Data)))
	dst = append(dst, l.Data...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(l.Extensions)))
	dst = append(dst, l.Extensions...)
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	return dst, nil
}

// decodeEntry decodes b, untrusted bytes read from disk, into l. The checksum
// is verified before any field is believed. Data and Extensions are copies,
// so l stays valid after b's transaction ends. A nil Data or Extensions
// encodes as length 0 and decodes as nil.
func decodeEntry(b []byte, l *raft.Log) error {
	if len(b) < entryFixedLen {
		return fmt.Errorf("%w: %d bytes, shorter than the fixed %d", errEntry, len(b), entryFixedLen)
	}
	body, sum := b[:len(b)-crcLen], binary.BigEndian.Uint32(b[len(b)-crcLen:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return fmt.Errorf("%w: checksum %08x, stored %08x", errEntry, got, sum)
	}
	if body[0] != entryVersion {
		return fmt.Errorf("%w: format version %d, want %d", errEntry, body[0], entryVersion)
	}
	index := binary.BigEndian.Uint64(body[1:])
	term := binary.BigEndian.Uint64(body[9:])
	typ := raft.LogType(body[17])
	sec := int64(binary.BigEndian.Uint64(body[18:]))
	nsec := binary.BigEndian.Uint32(body[26:])
	if nsec >= 1e9 {
		return fmt.Errorf("%w: nanoseconds %d out of range", errEntry, nsec)
	}
	rest := body[30:]
	data, rest, err := lengthPrefixed(rest, "data")
	if err != nil {
		return err
	}
	ext, rest, err := lengthPrefixed(rest, "extensions")
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errEntry, len(rest))
	}
	*l = raft.Log{
		Index:      index,
		Term:       term,
		Type:       typ,
		Data:       clone(data),
		Extensions: clone(ext),
	}
	if sec != zeroSec || nsec != 0 {
		l.AppendedAt = time.Unix(sec, int64(nsec))
	}
	return nil
}

// lengthPrefixed splits a 4-byte length and that many bytes off b.
func lengthPrefixed(b []byte, what string) (field, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("%w: no room for the length of %s", errEntry, what)
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: %s length %d, only %d bytes left", errEntry, what, n, len(b))
	}
	return b[:n], b[n:], nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
