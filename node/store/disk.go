package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// On disk (one bbolt file):
//
//	records: key -> rev (8 bytes, big-endian) | CRC-32C (4) | value
//	         the checksum covers the key, the rev bytes and the value
//	meta:    "state" -> format (1) | rev (8) | applied index (8) | CRC-32C (4)
//
// A file with a records bucket and no meta bucket is the old format
// (legacy.go).
var (
	bucketRecords = []byte("records")
	bucketMeta    = []byte("meta")
	keyState      = []byte("state")
)

const formatVersion = 2 // 1 was the stamped, last-writer-wins format

var errFormat = errors.New("unknown store format")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const recordHeader = 12

func encodeRecord(key string, value []byte, rev uint64) []byte {
	return appendRecord(make([]byte, 0, recordHeader+len(value)), key, value, rev)
}

// appendRecord appends the encoding of a record to b.
func appendRecord(b []byte, key string, value []byte, rev uint64) []byte {
	b = binary.BigEndian.AppendUint64(b, rev)
	b = binary.BigEndian.AppendUint32(b, recordSum(key, b[len(b)-8:], value))
	return append(b, value...)
}

func recordSum(key string, rev, value []byte) uint32 {
	c := crc32.Update(0, castagnoli, []byte(key))
	c = crc32.Update(c, castagnoli, rev)
	return crc32.Update(c, castagnoli, value)
}

func decodeRecord(key string, b []byte) (Record, error) {
	if len(b) < recordHeader {
		return Record{}, fmt.Errorf("record %q: %d bytes, shorter than its header", key, len(b))
	}
	if got, want := recordSum(key, b[:8], b[recordHeader:]), binary.BigEndian.Uint32(b[8:]); got != want {
		return Record{}, fmt.Errorf("record %q: checksum %08x, want %08x", key, got, want)
	}
	return Record{Key: key, Rev: binary.BigEndian.Uint64(b), Value: slices.Clone(b[recordHeader:])}, nil
}

func encodeState(rev, index uint64) []byte {
	b := make([]byte, 17, 21)
	b[0] = formatVersion
	binary.BigEndian.PutUint64(b[1:], rev)
	binary.BigEndian.PutUint64(b[9:], index)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeState(b []byte) (rev, index uint64, err error) {
	if len(b) != 21 {
		return 0, 0, fmt.Errorf("meta state: %d bytes, want 21", len(b))
	}
	if got, want := crc32.Checksum(b[:17], castagnoli), binary.BigEndian.Uint32(b[17:]); got != want {
		return 0, 0, fmt.Errorf("meta state: checksum %08x, want %08x", got, want)
	}
	if b[0] != formatVersion {
		return 0, 0, fmt.Errorf("%w: format %d, this labd reads %d", errFormat, b[0], formatVersion)
	}
	return binary.BigEndian.Uint64(b[1:]), binary.BigEndian.Uint64(b[9:]), nil
}

// CorruptError says that the store file cannot be trusted, and what to do.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("store: %s is corrupt (%v): move it away; a member or follower re-syncs from the control plane", e.Path, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// openBolt opens the bbolt file. bbolt reads the meta pages on open; a
// damaged file can make it panic before any check runs: that is corrupt
// data, reported as such.
func openBolt(path string, opts *bolt.Options) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, &CorruptError{Path: path, Err: fmt.Errorf("bbolt: %v", r)}
		}
	}()
	db, err = bolt.Open(path, 0o600, opts)
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("store: open %s: locked by another labd (is one already running with this --data?)", path)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch):
		return nil, &CorruptError{Path: path, Err: err}
	case err != nil:
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

// load checks the file and reads it into memory; a new file gets its
// buckets.
func (s *Store) load() (err error) {
	defer func() {
		if r := recover(); r != nil { // bbolt on a damaged page
			err = &CorruptError{Path: s.path, Err: fmt.Errorf("bbolt: %v", r)}
		}
	}()
	var legacy, fresh bool
	err = s.db.View(func(tx *bolt.Tx) error {
		if err := checkBolt(tx); err != nil {
			return &CorruptError{Path: s.path, Err: err}
		}
		meta, recs := tx.Bucket(bucketMeta), tx.Bucket(bucketRecords)
		switch {
		case meta == nil && recs != nil:
			legacy = true
			return nil
		case meta == nil:
			fresh = true
			return nil
		}
		s.rev, s.index, err = decodeState(meta.Get(keyState))
		switch {
		case errors.Is(err, errFormat): // not damage: a newer labd's file
			return fmt.Errorf("store: open %s: %w (written by a newer labd)", s.path, err)
		case err != nil:
			return &CorruptError{Path: s.path, Err: err}
		}
		if recs == nil {
			return &CorruptError{Path: s.path, Err: errors.New("no records bucket")}
		}
		return recs.ForEach(func(k, v []byte) error {
			r, err := decodeRecord(string(k), v)
			if err == nil && r.Rev > s.rev {
				err = fmt.Errorf("record %q: revision %d after the store's %d", r.Key, r.Rev, s.rev)
			}
			if err != nil {
				return &CorruptError{Path: s.path, Err: err}
			}
			s.recs[r.Key] = r
			return nil
		})
	})
	switch {
	case err != nil:
		return err
	case legacy:
		return fmt.Errorf("%w: %s: move it aside (as state.v1.db) and import its records (store.ReadLegacy)", ErrLegacy, s.path)
	case fresh:
		return s.db.Update(func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucket(bucketRecords); err != nil {
				return fmt.Errorf("store: open %s: %w", s.path, err)
			}
			m, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return fmt.Errorf("store: open %s: %w", s.path, err)
			}
			return m.Put(keyState, encodeState(0, 0))
		})
	}
	return nil
}

// checkBolt runs bbolt's consistency check (every page reachable once, none
// freed twice, keys in order) and joins the first few problems it finds.
func checkBolt(tx *bolt.Tx) error {
	const most = 5
	var found []string
	for err := range tx.Check() {
		if len(found) < most {
			found = append(found, err.Error())
		}
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("bbolt check: %s", strings.Join(found, "; "))
}

// persist writes ops (sorted by key: bbolt puts in key order are much
// cheaper than random ones) and the new state in one fsynced transaction.
// ops is not modified.
func (s *Store) persist(ops []Op, rev, index uint64) error {
	sorted := ops
	if !slices.IsSortedFunc(ops, cmpOps) {
		sorted = slices.SortedFunc(slices.Values(ops), cmpOps)
	}
	// One buffer for every encoded record: bbolt keeps the slices until
	// the commit, and a 100,000-host batch makes one allocation, not
	// 100,000.
	n := 0
	for _, op := range sorted {
		n += recordHeader + len(op.Value)
	}
	buf := make([]byte, 0, n)
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		b.FillPercent = 0.9 // mostly appended in order
		for _, op := range sorted {
			var err error
			if op.Value == nil {
				err = b.Delete([]byte(op.Key))
			} else {
				start := len(buf)
				buf = appendRecord(buf, op.Key, op.Value, rev)
				err = b.Put([]byte(op.Key), buf[start:len(buf):len(buf)])
			}
			if err != nil {
				return fmt.Errorf("record %q: %w", op.Key, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(keyState, encodeState(rev, index))
	})
}

// persistAll replaces every record with recs, in one fsynced transaction.
func (s *Store) persistAll(recs map[string]Record, rev, index uint64) error {
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return s.update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketRecords); err != nil {
			return err
		}
		b, err := tx.CreateBucket(bucketRecords)
		if err != nil {
			return err
		}
		b.FillPercent = 1 // written once, in order
		for _, k := range keys {
			r := recs[k]
			if err := b.Put([]byte(k), encodeRecord(k, r.Value, r.Rev)); err != nil {
				return fmt.Errorf("record %q: %w", k, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(keyState, encodeState(rev, index))
	})
}

func cmpOps(a, b Op) int { return strings.Compare(a.Key, b.Key) }

// update runs fn in one bbolt write transaction (fsynced on commit). A
// failure is wrapped with the file, remembered for Err and returned; bbolt
// has rolled the transaction back, so the file is as before.
func (s *Store) update(fn func(tx *bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil { // bbolt on a damaged page
			err = s.fail(&CorruptError{Path: s.path, Err: fmt.Errorf("bbolt: %v", r)})
		}
	}()
	if err := s.db.Update(fn); err != nil {
		return s.fail(fmt.Errorf("store: write %s: %w", s.path, err))
	}
	return nil
}

// fail remembers the first persistence failure for Err and returns err.
func (s *Store) fail(err error) error {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	if s.onError != nil {
		s.onError(err)
	}
	return err
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
