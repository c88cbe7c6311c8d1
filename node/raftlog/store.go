// Package raftlog keeps hashicorp/raft's log and stable store in one bbolt
// file: raft.LogStore (the replicated log) and raft.StableStore (current
// term, last vote). It replaces raft-boltdb, which does not build beside our
// memberlist.
//
// Every log entry is stored in our own small binary format (entry.go) with a
// CRC-32C per entry, verified on every read, so a changed byte on disk is an
// error naming the entry, never a value served as good. Every write is one
// bbolt transaction, fsynced on commit; a write that fails returns its error
// (raft then fails the operation) and is remembered for Err, so the daemon
// can turn its health NOT_SERVING.
package raftlog

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketLogs   = []byte("logs")
	bucketStable = []byte("stable")
)

// ErrCorrupt is in the chain of every error that reports corrupt data: a
// file that fails bbolt's check, or an entry or value whose checksum or
// format is wrong.
var ErrCorrupt = errors.New("corrupt raft data")

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("raftlog: store closed")

// remedy is what an operator should do about corrupt raft data. A control
// node's log is redundant: the other control nodes hold every committed
// entry and send a snapshot to a node that starts empty.
const remedy = "move it away and let the node re-sync from the control plane"

// Options configure Open.
type Options struct {
	// Check, when the file is opened, runs bbolt's consistency check
	// (every page reachable once, none freed twice, keys in order) and
	// verifies the checksum of every log entry and stable value. It reads
	// the whole file: for start-up, not for every open in a test.
	Check bool
	// LockTimeout bounds the wait for the file lock another process holds;
	// 2s when zero.
	LockTimeout time.Duration
	// MaxSize caps the file in bytes: a write that would grow it further
	// fails as on a full disk (bbolt's ErrMaxSizeReached). 0 is no limit.
	MaxSize int
	// OnError, when set, is called with every persistence error (a failed
	// write, a corrupt entry read) as it happens. It is called on raft's
	// goroutines and must not block: record or hand off, and return.
	OnError func(error)
}

// Store is a raft.LogStore and raft.StableStore over one bbolt file. All
// methods are safe for concurrent use; raft reads entries for replication
// while it appends new ones.
type Store struct {
	path    string
	db      *bolt.DB
	onError func(error)

	mu     sync.Mutex
	err    error // last persistence error, for Err
	closed bool
}

// Open opens (creating if needed) the store file at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	db, err := openBolt(path, &bolt.Options{Timeout: opts.LockTimeout, MaxSize: opts.MaxSize})
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, db: db, onError: opts.OnError}
	if err := s.prepare(opts.Check); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openBolt opens the bbolt file. bbolt reads the meta pages on open; a
// damaged file can make it panic before any check runs. That is corrupt
// data, reported as such.
func openBolt(path string, opts *bolt.Options) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, corruptFile(path, fmt.Errorf("bbolt: %v", r))
		}
	}()
	db, err = bolt.Open(path, 0o600, opts)
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("raftlog: open %s: locked by another process (is a labd already running with this data directory?)", path)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch):
		return nil, corruptFile(path, err)
	case err != nil:
		return nil, fmt.Errorf("raftlog: open %s: %w", path, err)
	}
	return db, nil
}

// prepare checks the file if asked (bbolt's structure first, then every
// entry's and value's checksum) and creates the buckets of a new file.
func (s *Store) prepare(check bool) error {
	if check {
		err := s.view(checkBolt)
		switch {
		case errors.Is(err, ErrCorrupt): // bbolt panicked, already said
			return fmt.Errorf("raftlog: %s: %w", s.path, err)
		case err != nil:
			return corruptFile(s.path, err)
		}
	}
	err := s.update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketLogs, bucketStable} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("raftlog: open %s: %w", s.path, err)
	}
	if check {
		return s.view(s.verify)
	}
	return nil
}

// checkBolt runs bbolt's consistency check (every page reachable once, none
// freed twice, keys in order) and joins what it finds, at most a few
// problems: enough to say the file is bad.
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

// verify reads every log entry and stable value and checks its checksum,
// so a damaged entry is found at start with one error rather than when raft
// applies it (raft v1.6.0 panics when GetLog fails for a committed entry it
// is about to apply, raft.go processLogs). The log is kept short by
// snapshots (TrailingLogs entries after each), so this is quick.
func (s *Store) verify(tx *bolt.Tx) error {
	var l raft.Log
	err := tx.Bucket(bucketLogs).ForEach(func(k, v []byte) error {
		idx, err := keyIndex(k)
		if err != nil {
			return corruptFile(s.path, err)
		}
		if err := decodeEntry(v, &l); err != nil {
			return &CorruptEntryError{Path: s.path, Index: idx, Err: err}
		}
		if l.Index != idx {
			return &CorruptEntryError{Path: s.path, Index: idx, Err: fmt.Errorf("%w: holds index %d", errEntry, l.Index)}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketStable).ForEach(func(k, v []byte) error {
		if _, err := stableValue(k, v); err != nil {
			return s.corruptStable(k, err)
		}
		return nil
	})
}

// corruptFile is the one error for a file that cannot be trusted.
func corruptFile(path string, cause error) error {
	return fmt.Errorf("raftlog: %s: %w (%v); %s", path, ErrCorrupt, cause, remedy)
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.path }

// Err returns the last persistence error (a failed write, a corrupt entry),
// or nil if there was none. Once set it stays: after a failed write the
// node's raft state cannot be trusted until it restarts.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// fail records err for Err and OnError and returns it.
func (s *Store) fail(err error) error {
	if err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	if s.onError != nil {
		s.onError(err)
	}
	return err
}

// Close closes the file. It is idempotent; every later call on the store
// returns ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("raftlog: close %s: %w", s.path, err)
	}
	return nil
}

// view and update run fn in a bbolt transaction, or return ErrClosed. bbolt
// itself returns ErrDatabaseNotOpen after Close; ErrClosed says which store.
// bbolt panics on a damaged page it meets (it rolls the transaction back
// first); that panic becomes an ErrCorrupt error here, so a page damaged
// after Open's check fails one raft operation rather than the process.
func (s *Store) view(fn func(tx *bolt.Tx) error) (err error) {
	defer recoverCorrupt(&err)
	err = s.db.View(fn)
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func (s *Store) update(fn func(tx *bolt.Tx) error) (err error) {
	defer recoverCorrupt(&err)
	err = s.db.Update(fn)
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w (bbolt: %v); %s", ErrCorrupt, r, remedy)
	}
}
