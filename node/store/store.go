// Package store is labnet's desired state: a map of records (labs,
// networks, hosts, ...) keyed by resource name, changed by batches that
// each make one new revision. It is the state machine that Raft drives on
// control nodes (ApplyIndexed) and the replica members keep from the
// control plane's change stream (ApplyChange, Restore).
//
// A batch may carry conditions (Cond): it applies only if nothing under
// each condition's prefix changed after the revision the writer read, so
// two writers can never silently overwrite each other (optimistic
// concurrency, as etcd's transactions compare mod revisions).
//
// The store persists in one bbolt file: every change is one fsynced
// transaction and becomes visible in memory only after it committed. Every
// record carries a CRC-32C, verified when the file is opened.
package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Record is one entry. Rev is the revision that last wrote Key.
type Record struct {
	Key   string
	Value []byte
	Rev   uint64
}

// Op is one write of a batch. A nil Value deletes Key.
type Op struct {
	Key   string
	Value []byte
}

// Cond holds iff no put or delete under Prefix (a key equal to Prefix
// counts) happened after Rev.
type Cond struct {
	Prefix string
	Rev    uint64
}

// Batch is what a writer asks for: its writes, applied together or not at
// all, and the conditions they depend on.
type Batch struct {
	Ops   []Op
	Conds []Cond
}

// Change is one applied batch as it changed the store: the writes that
// changed something, and Rev, the store's revision after it.
type Change struct {
	Rev uint64
	Ops []Op
}

var (
	// ErrConflict: a condition failed; nothing was applied.
	ErrConflict = errors.New("store: conflict: changed since read")
	// ErrCompacted: Since was asked for changes older than the history
	// keeps; take a Snapshot instead.
	ErrCompacted = errors.New("store: revision compacted")
	// ErrLegacy is in the chain of Open's error for a file written by a
	// labd before revisions (records stamped with a hybrid logical clock).
	// Move the file aside and import ReadLegacy's records.
	ErrLegacy = errors.New("store: old (v1) format")
	// ErrClosed is returned by writes after Close.
	ErrClosed = errors.New("store: closed")
)

// Options configure Open.
type Options struct {
	// Origin was the node's name stamped on its writes.
	//
	// Deprecated: unused since revisions replaced stamps; kept so callers
	// compile.
	Origin string
	// History is how many changes Since can return; 10000 when zero.
	History int
	// LockTimeout bounds the wait for the file lock another labd holds;
	// 2s when zero.
	LockTimeout time.Duration
	// MaxSize caps the file in bytes: a write that would grow it further
	// fails as on a full disk (bbolt's ErrMaxSizeReached). 0 is no limit.
	MaxSize int
	// OnError, when set, is called with every persistence failure as it
	// happens (Err keeps the first). It is called with no lock held, on
	// the writer's goroutine, and must not block.
	OnError func(error)
}

const defaultHistory = 10000

// Store is the state. All methods are safe for concurrent use. Writers are
// serialised; readers take a short lock and never wait for a writer's
// fsync, only for the in-memory apply that follows it.
type Store struct {
	path    string
	db      *bolt.DB
	onError func(error)

	writeMu sync.Mutex // serialises writes and Close
	closed  bool       // under writeMu

	mu    sync.RWMutex
	recs  map[string]Record
	rev   uint64
	index uint64
	hist  history
	subs  map[chan struct{}]struct{}
	err   error // first persistence failure
}

// Open opens (creating if needed) the store file at path, checks it (bbolt's
// consistency check and every record's checksum) and loads it. A damaged
// file is a *CorruptError; a file of the old format an error wrapping
// ErrLegacy.
func Open(path string, opts Options) (*Store, error) {
	if opts.History <= 0 {
		opts.History = defaultHistory
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	db, err := openBolt(path, &bolt.Options{Timeout: opts.LockTimeout, MaxSize: opts.MaxSize})
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, db: db, onError: opts.OnError, recs: map[string]Record{}, subs: map[chan struct{}]struct{}{}}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	s.hist = newHistory(opts.History, s.rev)
	return s, nil
}

// Close closes the file. It is idempotent; later writes fail with
// ErrClosed, reads keep answering from memory.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.path }

// Get returns the record at key. Its value is the store's: read it, do not
// change it (the same holds for every record and change the store returns).
func (s *Store) Get(key string) (Record, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.recs[key]
	return r, ok
}

// List returns the records whose keys start with prefix, sorted by key.
func (s *Store) List(prefix string) []Record {
	out, _ := s.ListRev(prefix)
	return out
}

// ListRev is List together with the revision it reflects, read under one
// lock, so a watcher can tag what it sends with the exact revision.
func (s *Store) ListRev(prefix string) ([]Record, uint64) {
	s.mu.RLock()
	out := s.listLocked(prefix)
	rev := s.rev
	s.mu.RUnlock()
	sortRecords(out)
	return out, rev
}

func (s *Store) listLocked(prefix string) []Record {
	out := make([]Record, 0, 16)
	for k, r := range s.recs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// Snapshot returns every record, sorted by key, and the revision they
// reflect.
func (s *Store) Snapshot() ([]Record, uint64) { return s.ListRev("") }

// Revision is the revision of the last applied change (0: none yet).
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// AppliedIndex is the last Raft log index given to ApplyIndexed or
// Restore, as persisted.
func (s *Store) AppliedIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// Err returns the first persistence failure (a full disk, a closed file),
// or nil while every write has been persisted. Once set it stays: the
// daemon reports itself NOT_SERVING with it.
func (s *Store) Err() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.err
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

// notifyLocked signals every subscriber; s.mu is held.
func (s *Store) notifyLocked() {
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func sortRecords(recs []Record) {
	slices.SortFunc(recs, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
}
