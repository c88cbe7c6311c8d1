package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/labnet-dev/labnet/node/store"
)

// Gossip messages carry store records in a compact binary form. A message
// (a broadcast, a reliable user message, or the push/pull state) is
//
//	kind (1 byte) | count (uvarint) | count × record
//
// and a record is
//
//	key length (uvarint) | key | stamp time (8 bytes, big endian) |
//	origin length (uvarint) | origin | flags (1 byte; bit 0: deleted) |
//	value length (uvarint) | value
//
// A tombstone has the deleted flag and an empty value. Every length is
// checked against the limits below before anything is allocated, so a hostile
// or corrupt message costs at most its own size to reject.
const (
	kindRecords byte = 1 // records from a broadcast or a reliable message
	kindState   byte = 2 // the sender's whole replica (push/pull)

	flagDeleted byte = 1

	// MaxKeyLen, MaxOriginLen and MaxValueLen bound what a decoder accepts.
	MaxKeyLen    = 1 << 10
	MaxOriginLen = 255
	MaxValueLen  = 4 << 20

	// minRecordLen is the encoding of an empty key, origin and value.
	minRecordLen = 1 + 8 + 1 + 1 + 1
)

// Errors from decodeMessage, for errors.Is.
var (
	ErrTruncated = errors.New("cluster: truncated message")
	ErrMalformed = errors.New("cluster: malformed message")
)

// appendRecord appends r's encoding to b.
func appendRecord(b []byte, r store.Record) []byte {
	b = binary.AppendUvarint(b, uint64(len(r.Key)))
	b = append(b, r.Key...)
	b = binary.BigEndian.AppendUint64(b, r.Stamp.Time)
	b = binary.AppendUvarint(b, uint64(len(r.Stamp.Origin)))
	b = append(b, r.Stamp.Origin...)
	var flags byte
	if r.Deleted {
		flags |= flagDeleted
	}
	b = append(b, flags)
	if r.Deleted {
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Value)))
	return append(b, r.Value...)
}

// recordLen is the length of r's encoding.
func recordLen(r store.Record) int {
	n := uvarintLen(len(r.Key)) + len(r.Key) + 8 + uvarintLen(len(r.Stamp.Origin)) + len(r.Stamp.Origin) + 1
	if r.Deleted {
		return n + 1
	}
	return n + uvarintLen(len(r.Value)) + len(r.Value)
}

func uvarintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// encodeMessage encodes recs as a message of the given kind.
func encodeMessage(kind byte, recs []store.Record) []byte {
	n := 1 + uvarintLen(len(recs))
	for _, r := range recs {
		n += recordLen(r)
	}
	b := make([]byte, 0, n)
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for _, r := range recs {
		b = appendRecord(b, r)
	}
	return b
}

// checkRecord reports whether r can be encoded within the decoder's limits.
func checkRecord(r store.Record) error {
	switch {
	case len(r.Key) > MaxKeyLen:
		return fmt.Errorf("record %.40q...: key longer than %d bytes", r.Key, MaxKeyLen)
	case len(r.Stamp.Origin) > MaxOriginLen:
		return fmt.Errorf("record %q: origin longer than %d bytes", r.Key, MaxOriginLen)
	case len(r.Value) > MaxValueLen:
		return fmt.Errorf("record %q: value longer than %d bytes", r.Key, MaxValueLen)
	}
	return nil
}

// decodeMessage decodes an untrusted message. The records it returns do not
// alias b.
func decodeMessage(b []byte) (kind byte, recs []store.Record, err error) {
	if len(b) < 1 {
		return 0, nil, ErrTruncated
	}
	kind = b[0]
	if kind != kindRecords && kind != kindState {
		return 0, nil, fmt.Errorf("%w: unknown kind %d", ErrMalformed, kind)
	}
	d := decoder{b: b[1:]}
	count := d.uvarint()
	if d.err != nil {
		return 0, nil, d.err
	}
	// Every record takes at least minRecordLen bytes: a count larger than
	// that allows is a lie, caught before allocating for it.
	if count > uint64(len(d.b)/minRecordLen) {
		return 0, nil, fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrTruncated, count, len(d.b))
	}
	recs = make([]store.Record, 0, count)
	for i := uint64(0); i < count; i++ {
		r := d.record()
		if d.err != nil {
			return 0, nil, fmt.Errorf("record %d: %w", i, d.err)
		}
		recs = append(recs, r)
	}
	if len(d.b) != 0 {
		return 0, nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	return kind, recs, nil
}

// decoder reads from b; the first error sticks and every later read
// returns zero values.
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
		if n == 0 {
			d.err = ErrTruncated
		} else {
			d.err = fmt.Errorf("%w: varint overflows", ErrMalformed)
		}
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes reads a length-prefixed field of at most max bytes.
func (d *decoder) bytes(what string, max int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(max) {
		d.err = fmt.Errorf("%w: %s length %d over the limit %d", ErrMalformed, what, n, max)
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: %s", ErrTruncated, what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.err = ErrTruncated
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = ErrTruncated
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) record() store.Record {
	key := d.bytes("key", MaxKeyLen)
	t := d.uint64()
	origin := d.bytes("origin", MaxOriginLen)
	flags := d.byte()
	value := d.bytes("value", MaxValueLen)
	if d.err != nil {
		return store.Record{}
	}
	switch {
	case len(key) == 0:
		d.err = fmt.Errorf("%w: empty key", ErrMalformed)
	case len(origin) == 0:
		d.err = fmt.Errorf("%w: record %q: empty origin", ErrMalformed, key)
	case flags&^flagDeleted != 0:
		d.err = fmt.Errorf("%w: record %q: unknown flags %#x", ErrMalformed, key, flags)
	case flags&flagDeleted != 0 && len(value) != 0:
		d.err = fmt.Errorf("%w: record %q: tombstone with a value", ErrMalformed, key)
	}
	if d.err != nil {
		return store.Record{}
	}
	r := store.Record{
		Key:     string(key),
		Stamp:   store.Stamp{Time: t, Origin: string(origin)},
		Deleted: flags&flagDeleted != 0,
	}
	if !r.Deleted {
		// The store writes live values as non-nil (Tx.Put): keep that.
		r.Value = append([]byte{}, value...)
	}
	return r
}
