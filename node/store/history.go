package store

import (
	"fmt"
	"slices"
)

// history is the ring of the last changes, for Since and for checking
// conditions: it holds every change after start, up to max of them.
type history struct {
	max     int
	changes []Change // oldest first; ring[head] is the oldest when full
	head    int
	start   uint64 // every change with Rev > start is held
}

func newHistory(max int, rev uint64) history {
	return history{max: max, start: rev}
}

// reset forgets every change: the history starts again at rev.
func (h *history) reset(rev uint64) {
	h.changes, h.head, h.start = nil, 0, rev
}

// add appends c, forgetting the oldest change when full.
func (h *history) add(c Change) {
	if len(h.changes) < h.max {
		h.changes = append(h.changes, c)
		return
	}
	h.start = h.changes[h.head].Rev
	h.changes[h.head] = c
	h.head = (h.head + 1) % h.max
}

// at returns the i-th oldest change held.
func (h *history) at(i int) Change {
	return h.changes[(h.head+i)%len(h.changes)]
}

// after returns the index (for at) of the first change with Rev > rev.
// Revisions are consecutive after start, so it is arithmetic.
func (h *history) after(rev uint64) int {
	if rev <= h.start {
		return 0
	}
	return int(rev - h.start)
}

// keysAfter returns the keys written by the changes after rev (rev >=
// start), sorted, each once.
func (h *history) keysAfter(rev uint64) []string {
	var keys []string
	for i := h.after(rev); i < len(h.changes); i++ {
		for _, op := range h.at(i).Ops {
			keys = append(keys, op.Key)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// Since returns the changes after rev, oldest first (none when rev is the
// current revision). A rev older than the history keeps is ErrCompacted:
// take a Snapshot. A rev ahead of the store (a replica that diverged) also
// wraps ErrCompacted, so the caller re-syncs the same way. The changes
// share memory with the store: do not modify them.
func (s *Store) Since(rev uint64) ([]Change, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case rev > s.rev:
		return nil, fmt.Errorf("%w: revision %d is ahead of the store's %d", ErrCompacted, rev, s.rev)
	case rev < s.hist.start:
		return nil, fmt.Errorf("%w: revision %d is older than the history's start %d", ErrCompacted, rev, s.hist.start)
	}
	h := &s.hist
	out := make([]Change, 0, len(h.changes)-h.after(rev))
	for i := h.after(rev); i < len(h.changes); i++ {
		out = append(out, h.at(i))
	}
	return out, nil
}
