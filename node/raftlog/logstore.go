package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

var _ raft.LogStore = (*Store)(nil)

// appendFill is the logs bucket's bolt.Bucket.FillPercent for appends.
const appendFill = 0.9

// Keys of the logs bucket are the entry's index as a big-endian uint64, so
// bbolt's byte order is index order and First/Last/Seek are the log's ends.
func indexKey(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

// keyIndex reads a key of the logs bucket; a key of another length is
// corrupt data, not an index.
func keyIndex(k []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("log key %x: %d bytes, want 8", k, len(k))
	}
	return binary.BigEndian.Uint64(k), nil
}

// CorruptEntryError says which log entry failed its checksum or format.
type CorruptEntryError struct {
	Path  string
	Index uint64
	Err   error
}

func (e *CorruptEntryError) Error() string {
	return fmt.Sprintf("raftlog: %s: log entry %d is corrupt (%v); %s", e.Path, e.Index, e.Err, remedy)
}

// Unwrap gives ErrCorrupt and the decoding cause to errors.Is.
func (e *CorruptEntryError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// FirstIndex implements raft.LogStore: "FirstIndex returns the first index
// written. 0 for no entries."
func (s *Store) FirstIndex() (uint64, error) {
	return s.end(func(c *bolt.Cursor) ([]byte, []byte) { return c.First() }, "first index")
}

// LastIndex implements raft.LogStore: "LastIndex returns the last index
// written. 0 for no entries."
func (s *Store) LastIndex() (uint64, error) {
	return s.end(func(c *bolt.Cursor) ([]byte, []byte) { return c.Last() }, "last index")
}

func (s *Store) end(pos func(*bolt.Cursor) ([]byte, []byte), what string) (uint64, error) {
	var idx uint64
	err := s.view(func(tx *bolt.Tx) error {
		k, _ := pos(tx.Bucket(bucketLogs).Cursor())
		if k == nil {
			return nil
		}
		var err error
		idx, err = keyIndex(k)
		if err != nil {
			return fmt.Errorf("%w (%v); %s", ErrCorrupt, err, remedy)
		}
		return nil
	})
	if err != nil {
		return 0, s.fail(fmt.Errorf("raftlog: %s of %s: %w", what, s.path, err))
	}
	return idx, nil
}

// GetLog implements raft.LogStore: "GetLog gets a log entry at a given
// index." A missing entry is raft.ErrLogNotFound, the sentinel raft's
// replication checks for (replication.go) to send a snapshot instead. An
// entry that fails its checksum, or that holds another index than its key,
// is a *CorruptEntryError.
func (s *Store) GetLog(index uint64, l *raft.Log) error {
	var corrupt error
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLogs).Get(indexKey(index))
		if v == nil {
			return raft.ErrLogNotFound
		}
		if err := decodeEntry(v, l); err != nil {
			corrupt = err
			return nil
		}
		if l.Index != index {
			corrupt = fmt.Errorf("%w: holds index %d", errEntry, l.Index)
		}
		return nil
	})
	switch {
	case errors.Is(err, raft.ErrLogNotFound):
		return raft.ErrLogNotFound
	case err != nil:
		return s.fail(fmt.Errorf("raftlog: get log %d from %s: %w", index, s.path, err))
	case corrupt != nil:
		*l = raft.Log{}
		return s.fail(&CorruptEntryError{Path: s.path, Index: index, Err: corrupt})
	}
	return nil
}

// StoreLog implements raft.LogStore: "StoreLog stores a log entry."
func (s *Store) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

// StoreLogs implements raft.LogStore: "StoreLogs stores multiple log
// entries." All of them are written in one transaction, fsynced once: the
// batch is on disk entirely or not at all. Gaps since the previous entries
// are allowed, as the contract says by default (the store does not implement
// raft.MonotonicLogStore); an entry at an index already held replaces it.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	size := 0
	for _, l := range logs {
		size += entryFixedLen + len(l.Data) + len(l.Extensions)
	}
	buf := make([]byte, 0, size)
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLogs)
		// Appends come in index order, so pages that split keep 90% rather
		// than bbolt's default half: half the file for the same entries
		// (BenchmarkFileSize). bbolt does not store the setting.
		b.FillPercent = appendFill
		for _, l := range logs {
			var err error
			// bbolt keeps a reference to the value until commit, so each
			// entry gets its own part of buf (which never grows).
			buf, err = encodeEntry(buf[len(buf):], l)
			if err != nil {
				return err
			}
			if err := b.Put(indexKey(l.Index), buf); err != nil {
				return fmt.Errorf("put %d: %w", l.Index, err)
			}
		}
		return nil
	})
	if err != nil {
		first, last := logs[0].Index, logs[len(logs)-1].Index
		return s.fail(fmt.Errorf("raftlog: store logs %d..%d in %s: %w", first, last, s.path, err))
	}
	return nil
}

// DeleteRange implements raft.LogStore: "DeleteRange deletes a range of log
// entries. The range is inclusive." raft calls it to compact the log after
// a snapshot (a prefix) and to drop a follower's conflicting entries (a
// suffix).
func (s *Store) DeleteRange(lo, hi uint64) error {
	if lo > hi {
		return nil
	}
	err := s.update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLogs).Cursor()
		// Seek again after each delete rather than trusting Next on a
		// cursor whose leaf just changed (k points into that leaf).
		for k, _ := c.Seek(indexKey(lo)); k != nil; {
			idx, err := keyIndex(k)
			if err != nil {
				return err
			}
			if idx > hi {
				return nil
			}
			if err := c.Delete(); err != nil {
				return fmt.Errorf("delete %d: %w", idx, err)
			}
			k, _ = c.Seek(indexKey(idx))
		}
		return nil
	})
	if err != nil {
		return s.fail(fmt.Errorf("raftlog: delete logs %d..%d in %s: %w", lo, hi, s.path, err))
	}
	return nil
}
