// Package store is labnet's replicated desired state: a map of records
// (labs, networks, hosts, ...) keyed by resource name, each stamped with a
// hybrid logical clock and the node that wrote it. The larger stamp wins;
// deletes are tombstones collected after a horizon. Each node persists its
// replica in its data directory with bbolt, one transaction per write, so a
// restart (even after kill -9) loses nothing that was acknowledged.
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Record is one versioned entry.
type Record struct {
	Key     string
	Value   []byte // nil for a tombstone
	Stamp   Stamp
	Deleted bool
}

var bucketRecords = []byte("records")

// Store holds the replica. All methods are safe for concurrent use.
type Store struct {
	db     *bolt.DB
	origin string
	clock  hlc

	writeMu sync.Mutex // serialises Update

	mu   sync.RWMutex
	recs map[string]Record
	rev  uint64
	subs map[chan struct{}]struct{}
}

// Options configure Open.
type Options struct {
	// Origin is this node's name, stamped on its writes.
	Origin string
	// Now is the wall clock; time.Now when nil.
	Now func() time.Time
}

// Open opens (creating if needed) the replica file at path and loads it.
func Open(path string, opts Options) (*Store, error) {
	if opts.Origin == "" {
		return nil, errors.New("store: empty origin")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store: open %s: locked by another labd (is one already running with this --data?)", path)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db, origin: opts.Origin, recs: map[string]Record{}, subs: map[chan struct{}]struct{}{}}
	s.clock.now = opts.Now
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRecords)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			r, err := decodeRecord(string(k), v)
			if err != nil {
				return err
			}
			s.recs[r.Key] = r
			s.clock.observe(r.Stamp.Time)
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: load %s: %w", path, err)
	}
	return s, nil
}

// Close closes the file. It is idempotent.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// Get returns the live record at key.
func (s *Store) Get(key string) (Record, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.recs[key]
	if !ok || r.Deleted {
		return Record{}, false
	}
	return r, true
}

// List returns the live records whose keys start with prefix, sorted by key.
func (s *Store) List(prefix string) []Record {
	out, _ := s.Snapshot(prefix)
	return out
}

// Snapshot is List(prefix) together with the revision it reflects, read
// under one lock, so a watcher can tag what it sends with the exact
// revision.
func (s *Store) Snapshot(prefix string) ([]Record, uint64) {
	s.mu.RLock()
	out := make([]Record, 0, 16)
	for k, r := range s.recs {
		if !r.Deleted && strings.HasPrefix(k, prefix) {
			out = append(out, r)
		}
	}
	rev := s.rev
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, rev
}

// Revision counts the changes this replica has applied.
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// Tx is a write in progress. Reads see the transaction's own writes.
type Tx struct {
	s       *Store
	pending map[string][]byte // nil value: delete
	order   []string
}

// Get reads key as the transaction sees it.
func (tx *Tx) Get(key string) ([]byte, bool) {
	if v, ok := tx.pending[key]; ok {
		return v, v != nil
	}
	r, ok := tx.s.Get(key)
	return r.Value, ok
}

// List lists live keys with prefix as the transaction sees them, sorted.
func (tx *Tx) List(prefix string) []Record {
	base := tx.s.List(prefix)
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
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Put writes value at key (the store keeps value; do not change it after).
func (tx *Tx) Put(key string, value []byte) {
	if value == nil {
		value = []byte{}
	}
	tx.set(key, value)
}

// Delete removes key (a tombstone is kept for the horizon).
func (tx *Tx) Delete(key string) { tx.set(key, nil) }

func (tx *Tx) set(key string, value []byte) {
	if _, ok := tx.pending[key]; !ok {
		tx.order = append(tx.order, key)
	}
	tx.pending[key] = value
}

// Update runs fn and, if it returns nil, commits its writes atomically: all
// of them are persisted in one bbolt transaction and then become visible
// together, or none is. Writes that change nothing are skipped. Update
// returns the keys that changed.
func (s *Store) Update(fn func(tx *Tx) error) ([]string, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.db == nil {
		return nil, errors.New("store: closed")
	}
	tx := &Tx{s: s, pending: map[string][]byte{}}
	if err := fn(tx); err != nil {
		return nil, err
	}
	var recs []Record
	for _, k := range tx.order {
		v := tx.pending[k]
		old, exists := s.Get(k)
		if v == nil && !exists {
			continue
		}
		if v != nil && exists && bytes.Equal(old.Value, v) {
			continue
		}
		recs = append(recs, Record{Key: k, Value: v, Deleted: v == nil})
	}
	if len(recs) == 0 {
		return nil, nil
	}
	for i := range recs {
		recs[i].Stamp = Stamp{Time: s.clock.next(), Origin: s.origin}
	}
	if err := s.persist(recs); err != nil {
		return nil, err
	}
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = r.Key
	}
	s.apply(recs)
	return keys, nil
}

// Merge applies records from another replica, keeping for each key the one
// with the larger stamp (last writer wins). It returns the keys that changed.
func (s *Store) Merge(in []Record) ([]string, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.db == nil {
		return nil, errors.New("store: closed")
	}
	var recs []Record
	seen := map[string]int{} // key -> index in recs, for keys repeated in in
	s.mu.RLock()
	for _, r := range in {
		if i, ok := seen[r.Key]; ok {
			if r.Stamp.After(recs[i].Stamp) {
				recs[i] = r
			}
			continue
		}
		if old, ok := s.recs[r.Key]; ok && !r.Stamp.After(old.Stamp) {
			continue
		}
		seen[r.Key] = len(recs)
		recs = append(recs, r)
	}
	s.mu.RUnlock()
	if len(recs) == 0 {
		return nil, nil
	}
	for _, r := range recs {
		s.clock.observe(r.Stamp.Time)
	}
	if err := s.persist(recs); err != nil {
		return nil, err
	}
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = r.Key
	}
	s.apply(recs)
	return keys, nil
}

// All returns every record, tombstones included (for anti-entropy).
func (s *Store) All() []Record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Record, 0, len(s.recs))
	for _, r := range s.recs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// CollectTombstones forgets tombstones older than horizon (by their stamp's
// wall time) and returns how many it removed.
func (s *Store) CollectTombstones(now time.Time, horizon time.Duration) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.db == nil {
		return 0, errors.New("store: closed")
	}
	var old []string
	s.mu.RLock()
	for k, r := range s.recs {
		if r.Deleted && now.Sub(r.Stamp.Wall()) > horizon {
			old = append(old, k)
		}
	}
	s.mu.RUnlock()
	if len(old) == 0 {
		return 0, nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		for _, k := range old {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: collect tombstones: %w", err)
	}
	s.mu.Lock()
	for _, k := range old {
		delete(s.recs, k)
	}
	s.mu.Unlock()
	return len(old), nil
}

func (s *Store) persist(recs []Record) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		for _, r := range recs {
			if err := b.Put([]byte(r.Key), encodeRecord(r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: write: %w", err)
	}
	return nil
}

func (s *Store) apply(recs []Record) {
	s.mu.Lock()
	for _, r := range recs {
		s.recs[r.Key] = r
	}
	s.rev++
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
}

// Subscribe returns a channel that receives a value after changes (several
// changes may be coalesced into one signal) and a function that ends the
// subscription.
func (s *Store) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

// Record encoding on disk: stamp time (8 bytes), flags (1: deleted), origin
// length (2) and origin, then the value.
func encodeRecord(r Record) []byte {
	b := make([]byte, 0, 11+len(r.Stamp.Origin)+len(r.Value))
	b = binary.BigEndian.AppendUint64(b, r.Stamp.Time)
	var flags byte
	if r.Deleted {
		flags = 1
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Stamp.Origin)))
	b = append(b, r.Stamp.Origin...)
	return append(b, r.Value...)
}

func decodeRecord(key string, b []byte) (Record, error) {
	if len(b) < 11 {
		return Record{}, fmt.Errorf("record %q: truncated", key)
	}
	n := int(binary.BigEndian.Uint16(b[9:]))
	if len(b) < 11+n {
		return Record{}, fmt.Errorf("record %q: truncated origin", key)
	}
	r := Record{
		Key:     key,
		Stamp:   Stamp{Time: binary.BigEndian.Uint64(b), Origin: string(b[11 : 11+n])},
		Deleted: b[8]&1 != 0,
	}
	if !r.Deleted {
		r.Value = append([]byte{}, b[11+n:]...)
	}
	return r, nil
}
