package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Apply checks b's conditions and applies its writes as revision
// Revision()+1, persisted (fsynced) before it returns. Writes that change
// nothing (a put of the value already there, a delete of a missing key) are
// left out; a batch left with none makes no new revision and returns the
// current one. A failed condition is ErrConflict and applies nothing. On a
// persistence failure Apply returns the error, memory stays as it was and
// Err is set. The store keeps the ops' values: do not change them after.
func (s *Store) Apply(b Batch) (uint64, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.applyLocked(b, 0, false)
}

// ApplyIndexed is Apply for the Raft state machine: it also records index,
// the log index of the entry b came from, in the same transaction. An entry
// at or below AppliedIndex() was applied before (raft replays its log after
// a restart) and is skipped. A conflicting or empty batch still records its
// index.
func (s *Store) ApplyIndexed(index uint64, b Batch) (uint64, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.RLock()
	done, rev := index <= s.index, s.rev
	s.mu.RUnlock()
	if done {
		return rev, nil
	}
	return s.applyLocked(b, index, true)
}

// applyLocked is Apply; s.writeMu is held. With indexed, index is recorded
// as the applied index whatever the outcome (a refused batch too: raft
// must not give it again).
func (s *Store) applyLocked(b Batch, index uint64, indexed bool) (uint64, error) {
	if s.closed {
		return 0, s.fail(ErrClosed)
	}
	var refused error
	if slices.ContainsFunc(b.Ops, func(op Op) bool { return op.Key == "" }) {
		refused = errors.New("store: apply: empty key")
	}
	s.mu.RLock()
	rev := s.rev
	if refused == nil && !s.condsHoldLocked(b.Conds) {
		refused = ErrConflict
	}
	var ops []Op
	if refused == nil {
		ops = s.effectiveLocked(b.Ops)
	}
	s.mu.RUnlock()
	if len(ops) == 0 {
		if indexed {
			if err := s.persist(nil, rev, index); err != nil {
				return 0, err
			}
			s.mu.Lock()
			s.index = index
			s.mu.Unlock()
		}
		if refused != nil {
			return 0, refused
		}
		return rev, nil
	}
	if !indexed {
		index = s.AppliedIndex()
	}
	c := Change{Rev: rev + 1, Ops: ops}
	if err := s.persist(c.Ops, c.Rev, index); err != nil {
		return 0, err
	}
	s.commit(c, index)
	return c.Rev, nil
}

// ApplyChange applies a change as the control plane applied it (a member's
// replica). c.Rev must be Revision()+1: a gap means changes were missed and
// the replica must re-sync from a snapshot. A change at or below Revision()
// was applied before (a resumed stream) and is skipped. The store keeps
// the ops' values: do not change them after.
func (s *Store) ApplyChange(c Change) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return s.fail(ErrClosed)
	}
	s.mu.RLock()
	rev, index := s.rev, s.index
	s.mu.RUnlock()
	switch {
	case c.Rev <= rev:
		return nil
	case c.Rev != rev+1:
		return fmt.Errorf("store: change %d after revision %d: changes missed, re-sync", c.Rev, rev)
	}
	for _, op := range c.Ops {
		if op.Key == "" {
			return fmt.Errorf("store: change %d: empty key", c.Rev)
		}
	}
	if err := s.persist(c.Ops, c.Rev, index); err != nil {
		return err
	}
	s.commit(c, index)
	return nil
}

// Restore replaces everything with recs at revision rev and applied index
// index (a Raft snapshot, or a member's re-sync), persisted in one
// transaction. The history starts again at rev. The store keeps the
// records' values: do not change them after.
func (s *Store) Restore(recs []Record, rev, index uint64) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return s.fail(ErrClosed)
	}
	m := make(map[string]Record, len(recs))
	for _, r := range recs {
		if r.Key == "" {
			return errors.New("store: restore: empty key")
		}
		if r.Rev > rev {
			return fmt.Errorf("store: restore: record %q at revision %d after the snapshot's %d", r.Key, r.Rev, rev)
		}
		if r.Value == nil {
			r.Value = []byte{}
		}
		m[r.Key] = r
	}
	if err := s.persistAll(m, rev, index); err != nil {
		return err
	}
	s.mu.Lock()
	s.recs, s.rev, s.index = m, rev, index
	s.hist.reset(rev)
	s.notifyLocked()
	s.mu.Unlock()
	return nil
}

// Update runs fn on the current state and applies what it wrote, if its
// reads still hold (always, as writes are serialised here): Read then
// Apply, for a single store (tests, tools). It returns the new revision, or
// the current one when fn changed nothing.
func (s *Store) Update(fn func(tx *Tx) error) (uint64, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	b, err := s.Read(fn)
	if err != nil {
		return 0, err
	}
	return s.applyLocked(b, 0, false)
}

// commit makes c visible in memory after it was persisted.
func (s *Store) commit(c Change, index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range c.Ops {
		if op.Value == nil {
			delete(s.recs, op.Key)
			continue
		}
		s.recs[op.Key] = Record{Key: op.Key, Value: op.Value, Rev: c.Rev}
	}
	s.rev, s.index = c.Rev, index
	s.hist.add(c)
	s.notifyLocked()
}

// effectiveLocked returns the writes of ops that change something, the last
// write of a key winning, in their first order; s.mu is held.
func (s *Store) effectiveLocked(ops []Op) []Op {
	last := make(map[string]int, len(ops))
	for i, op := range ops {
		last[op.Key] = i
	}
	out := make([]Op, 0, len(last))
	for i, op := range ops {
		if last[op.Key] != i {
			continue
		}
		old, exists := s.recs[op.Key]
		switch {
		case op.Value == nil && !exists:
			continue
		case op.Value != nil && exists && bytes.Equal(old.Value, op.Value):
			continue
		}
		out = append(out, op)
	}
	return out
}

// condsHoldLocked reports whether every condition holds; s.mu is held. The
// changes after a condition's revision are in the history when it is not
// older than the history's start; an older condition cannot be checked
// (a deletion under its prefix may have been forgotten) and fails.
//
// The keys written after a revision are gathered and sorted once per
// distinct revision among the conditions (a Read gives all of its
// conditions one), so checking C conditions against T written keys costs
// O((T + C) log T), not C × T: a 100,000-host apply after a 100,000-host
// change stays quick.
func (s *Store) condsHoldLocked(conds []Cond) bool {
	var written map[uint64][]string
	for _, c := range conds {
		if c.Rev >= s.rev {
			continue
		}
		if c.Rev < s.hist.start {
			return false
		}
		keys, ok := written[c.Rev]
		if !ok {
			keys = s.hist.keysAfter(c.Rev)
			if written == nil {
				written = map[uint64][]string{}
			}
			written[c.Rev] = keys
		}
		// The first written key at or after the prefix is under it if
		// any is.
		if i, _ := slices.BinarySearch(keys, c.Prefix); i < len(keys) && strings.HasPrefix(keys[i], c.Prefix) {
			return false
		}
	}
	return true
}
