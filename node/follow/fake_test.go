package follow

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// memStore is an in-memory store with node/store's revisioned API: the
// control node's store (Source) and a member's replica (Replica) in
// tests.
type memStore struct {
	mu        sync.Mutex
	recs      map[string]Record
	rev       uint64
	history   []Change // the last maxHist changes
	maxHist   int
	subs      map[chan struct{}]struct{}
	err       error // persistence failure, once set
	failNext  bool  // the next ApplyChange fails as a disk would
	snapshots int   // Snapshot calls
}

func newMemStore(maxHist int) *memStore {
	return &memStore{recs: map[string]Record{}, maxHist: maxHist, subs: map[chan struct{}]struct{}{}}
}

// write applies ops as the next revision (the control node's commit).
func (s *memStore) write(ops ...Op) uint64 {
	s.mu.Lock()
	c := Change{Rev: s.rev + 1, Ops: ops}
	s.applyLocked(c)
	s.history = append(s.history, c)
	if len(s.history) > s.maxHist {
		s.history = slices.Clone(s.history[len(s.history)-s.maxHist:])
	}
	s.notifyLocked()
	s.mu.Unlock()
	return c.Rev
}

func (s *memStore) put(kv ...string) uint64 {
	var ops []Op
	for i := 0; i+1 < len(kv); i += 2 {
		ops = append(ops, Op{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return s.write(ops...)
}

func (s *memStore) del(keys ...string) uint64 {
	var ops []Op
	for _, k := range keys {
		ops = append(ops, Op{Key: k})
	}
	return s.write(ops...)
}

func (s *memStore) applyLocked(c Change) {
	for _, op := range c.Ops {
		if op.Value == nil {
			delete(s.recs, op.Key)
		} else {
			s.recs[op.Key] = Record{Key: op.Key, Value: op.Value, Rev: c.Rev}
		}
	}
	s.rev = c.Rev
}

func (s *memStore) notifyLocked() {
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *memStore) Revision() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev
}

func (s *memStore) Snapshot() ([]Record, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshots++
	out := make([]Record, 0, len(s.recs))
	for _, r := range s.recs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, s.rev
}

func (s *memStore) snapshotCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshots
}

func (s *memStore) Since(rev uint64) ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev >= s.rev {
		return nil, nil
	}
	if len(s.history) == 0 || s.history[0].Rev > rev+1 {
		return nil, ErrCompacted
	}
	return slices.Clone(s.history[rev+1-s.history[0].Rev:]), nil
}

func (s *memStore) Subscribe() (<-chan struct{}, func()) {
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

func (s *memStore) Restore(recs []Record, rev uint64, index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.recs = map[string]Record{}
	for _, r := range recs {
		s.recs[r.Key] = r
	}
	s.rev, s.history = rev, nil
	s.notifyLocked()
	return nil
}

var errDiskFull = errors.New("write state.db: no space left on device")

func (s *memStore) ApplyChange(c Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.failNext {
		s.err = errDiskFull
		return s.err
	}
	if c.Rev != s.rev+1 {
		return fmt.Errorf("store: change %d does not follow revision %d", c.Rev, s.rev)
	}
	s.applyLocked(c)
	s.notifyLocked()
	return nil
}

func (s *memStore) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// dump is the state as "key=value@rev" lines, to compare two stores.
func (s *memStore) dump() string {
	recs, rev := s.Snapshot()
	s.mu.Lock()
	s.snapshots--
	s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "revision %d\n", rev)
	for _, r := range recs {
		fmt.Fprintf(&b, "%s=%s@%d\n", r.Key, r.Value, r.Rev)
	}
	return b.String()
}
