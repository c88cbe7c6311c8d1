package store

import (
	"strings"
)

// Tx is a write being prepared by Read or Update. Reads see the
// transaction's own writes; every read is remembered as a condition.
type Tx struct {
	s       *Store
	rev     uint64            // the view's revision
	pending map[string][]byte // nil value: delete
	order   []string
	read    map[string]struct{} // keys and prefixes read
	reads   []string            // read, in order
}

// Read runs fn on the current state and returns the batch it asks for: its
// writes, and one condition per key it read or prefix it listed, at the
// revision it read. Nothing is applied. fn's error is returned as is.
//
// fn reads the store as it is while it runs; if a write lands meanwhile,
// fn may see it, but then the conditions of what it read fail when the
// batch is applied, so a batch never rests on state that changed.
func (s *Store) Read(fn func(tx *Tx) error) (Batch, error) {
	tx := &Tx{s: s, rev: s.Revision(), pending: map[string][]byte{}, read: map[string]struct{}{}}
	if err := fn(tx); err != nil {
		return Batch{}, err
	}
	b := Batch{Ops: make([]Op, 0, len(tx.order)), Conds: make([]Cond, 0, len(tx.reads))}
	for _, k := range tx.order {
		b.Ops = append(b.Ops, Op{Key: k, Value: tx.pending[k]})
	}
	for _, p := range tx.reads {
		b.Conds = append(b.Conds, Cond{Prefix: p, Rev: tx.rev})
	}
	return b, nil
}

// Revision is the revision of the state the transaction reads.
func (tx *Tx) Revision() uint64 { return tx.rev }

func (tx *Tx) note(prefix string) {
	if _, ok := tx.read[prefix]; !ok {
		tx.read[prefix] = struct{}{}
		tx.reads = append(tx.reads, prefix)
	}
}

// Get reads key as the transaction sees it.
func (tx *Tx) Get(key string) ([]byte, bool) {
	tx.note(key)
	if v, ok := tx.pending[key]; ok {
		return v, v != nil
	}
	r, ok := tx.s.Get(key)
	return r.Value, ok
}

// List lists the keys with prefix as the transaction sees them, sorted.
func (tx *Tx) List(prefix string) []Record {
	tx.note(prefix)
	base := tx.s.List(prefix)
	if len(tx.pending) == 0 {
		return base
	}
	out := base[:0:0]
	for _, r := range base {
		if _, ok := tx.pending[r.Key]; !ok {
			out = append(out, r)
		}
	}
	for k, v := range tx.pending {
		if v != nil && strings.HasPrefix(k, prefix) {
			out = append(out, Record{Key: k, Value: v})
		}
	}
	sortRecords(out)
	return out
}

// Put writes value at key (the store keeps value; do not change it after).
func (tx *Tx) Put(key string, value []byte) {
	if value == nil {
		value = []byte{}
	}
	tx.set(key, value)
}

// Delete removes key.
func (tx *Tx) Delete(key string) { tx.set(key, nil) }

func (tx *Tx) set(key string, value []byte) {
	if _, ok := tx.pending[key]; !ok {
		tx.order = append(tx.order, key)
	}
	tx.pending[key] = value
}
