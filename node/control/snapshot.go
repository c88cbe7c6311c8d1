package control

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Snapshot encoding, version 1. A snapshot is the whole state in one
// buffer (the state lives in memory anyway):
//
//	version   1 byte (1)
//	index     uvarint: raft index of the last entry applied
//	rev       uvarint: the state's revision
//	count     uvarint: number of records
//	records   count times: key (uvarint length, bytes), value (uvarint
//	          length, bytes), rev (uvarint)
//	crc       4 bytes, big endian: CRC-32C of everything before it
//
// The decoder takes untrusted bytes (a snapshot sent by a peer, or read
// from a damaged disk): every length is checked against what is left.
const snapshotVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBadSnapshot is in the chain of every snapshot decoding error.
var ErrBadSnapshot = errors.New("bad snapshot")

func encodeSnapshot(s *snapshot) []byte {
	b := []byte{snapshotVersion}
	b = binary.AppendUvarint(b, s.index)
	b = binary.AppendUvarint(b, s.rev)
	b = binary.AppendUvarint(b, uint64(len(s.recs)))
	for _, r := range s.recs {
		b = binary.AppendUvarint(b, uint64(len(r.Key)))
		b = append(b, r.Key...)
		b = binary.AppendUvarint(b, uint64(len(r.Value)))
		b = append(b, r.Value...)
		b = binary.AppendUvarint(b, r.Rev)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeSnapshot(b []byte) (*snapshot, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadSnapshot, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrBadSnapshot, got, sum)
	}
	if body[0] != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d, this labd reads version %d", ErrBadSnapshot, body[0], snapshotVersion)
	}
	d := decoder{b: body[1:]}
	s := &snapshot{index: d.uvarint(), rev: d.uvarint()}
	n := d.uvarint()
	// Every record takes at least 3 bytes: a count larger than that is a
	// lie, refused before allocating for it.
	if d.err == nil && n > uint64(len(d.b))/3 {
		return nil, fmt.Errorf("%w: %d records in %d bytes", ErrBadSnapshot, n, len(d.b))
	}
	s.recs = make([]Record, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		r := Record{Key: string(d.bytes())}
		r.Value = d.bytes()
		r.Rev = d.uvarint()
		if d.err == nil && r.Rev > s.rev {
			return nil, fmt.Errorf("%w: record %q at revision %d, after the snapshot's %d", ErrBadSnapshot, r.Key, r.Rev, s.rev)
		}
		s.recs = append(s.recs, r)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last record", ErrBadSnapshot, len(d.b))
	}
	return s, nil
}

// decoder reads uvarints and length-prefixed byte strings; the first
// error sticks and later reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("truncated or overlong number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("length %d with %d bytes left", n, len(d.b))
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}
