package store

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A batch's encoding, the payload of a Raft log entry:
//
//	version (1 byte, batchVersion)
//	ops:   count (uvarint), then each: kind (1 byte: 0 put, 1 delete),
//	       key length (uvarint), key, and for a put value length (uvarint)
//	       and value
//	conds: count (uvarint), then each: prefix length (uvarint), prefix,
//	       revision (uvarint)
//
// Nothing may follow. DecodeBatch takes bytes from the network and the disk
// as hostile: every length is checked against what is left.
const batchVersion = 1

const (
	opPut    byte = 0
	opDelete byte = 1
)

var errBatch = errors.New("store: bad batch")

// EncodeBatch encodes b for a Raft log entry.
func EncodeBatch(b Batch) []byte {
	n := 1 + 2*binary.MaxVarintLen64
	for _, op := range b.Ops {
		n += 1 + 2*binary.MaxVarintLen64 + len(op.Key) + len(op.Value)
	}
	for _, c := range b.Conds {
		n += 2*binary.MaxVarintLen64 + len(c.Prefix)
	}
	out := make([]byte, 0, n)
	out = append(out, batchVersion)
	out = binary.AppendUvarint(out, uint64(len(b.Ops)))
	for _, op := range b.Ops {
		kind := opPut
		if op.Value == nil {
			kind = opDelete
		}
		out = append(out, kind)
		out = appendBytes(out, []byte(op.Key))
		if kind == opPut {
			out = appendBytes(out, op.Value)
		}
	}
	out = binary.AppendUvarint(out, uint64(len(b.Conds)))
	for _, c := range b.Conds {
		out = appendBytes(out, []byte(c.Prefix))
		out = binary.AppendUvarint(out, c.Rev)
	}
	return out
}

func appendBytes(out, b []byte) []byte {
	out = binary.AppendUvarint(out, uint64(len(b)))
	return append(out, b...)
}

// DecodeBatch decodes EncodeBatch's output. Values are copied: the batch
// does not keep p.
func DecodeBatch(p []byte) (Batch, error) {
	d := decoder{p: p}
	if v := d.byte(); d.err == nil && v != batchVersion {
		return Batch{}, fmt.Errorf("%w: version %d, this labd reads %d", errBatch, v, batchVersion)
	}
	var b Batch
	// Each op takes at least 2 bytes and each cond 2: a count larger than
	// what is left is an error, never a huge allocation.
	if n := d.count(2); n > 0 {
		b.Ops = make([]Op, 0, n)
		for range n {
			kind := d.byte()
			op := Op{Key: string(d.bytes())}
			switch kind {
			case opPut:
				op.Value = append([]byte{}, d.bytes()...)
			case opDelete:
			default:
				d.fail(fmt.Sprintf("op kind %d", kind))
			}
			if d.err == nil && op.Key == "" {
				d.fail("empty key")
			}
			if d.err != nil {
				break
			}
			b.Ops = append(b.Ops, op)
		}
	}
	if n := d.count(2); n > 0 {
		b.Conds = make([]Cond, 0, n)
		for range n {
			c := Cond{Prefix: string(d.bytes()), Rev: d.uvarint()}
			if d.err != nil {
				break
			}
			b.Conds = append(b.Conds, c)
		}
	}
	if d.err == nil && len(d.p) != 0 {
		d.fail(fmt.Sprintf("%d bytes after the end", len(d.p)))
	}
	if d.err != nil {
		return Batch{}, d.err
	}
	return b, nil
}

// decoder reads from p; after the first error every read returns zero.
type decoder struct {
	p       []byte
	err     error
	scratch [binary.MaxVarintLen64]byte
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errBatch, what)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.p) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.p[0]
	d.p = d.p[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	if n != len(binary.AppendUvarint(d.scratch[:0], v)) {
		d.fail("varint not in its shortest form") // one batch, one encoding
		return 0
	}
	d.p = d.p[n:]
	return v
}

// count reads a count of items each at least min bytes long.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.p)/min) {
		d.fail(fmt.Sprintf("count %d with %d bytes left", n, len(d.p)))
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.p)) {
		d.fail(fmt.Sprintf("length %d with %d bytes left", n, len(d.p)))
	}
	if d.err != nil {
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}
