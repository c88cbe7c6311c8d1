package control

import (
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"github.com/labnet-dev/labnet/node/store"
)

// State is what the control plane needs of its state machine: node/store's
// revisioned Store behind a small seam (state.go adapts it), so the raft
// wiring is tested without the store's files.
type State interface {
	// Propose runs fn on a consistent view of the state and returns the
	// log entry that applies its writes, conditioned on everything fn read.
	// fn's error is returned as is, and nothing is proposed.
	Propose(fn func(*store.Tx) error) ([]byte, error)
	// Apply applies a committed log entry at its raft index and returns the
	// state's revision after it, or store.ErrConflict (nothing applied). An
	// index at or below AppliedIndex is a replay: skipped.
	Apply(index uint64, entry []byte) (uint64, error)
	// AppliedIndex is the raft index of the last entry applied.
	AppliedIndex() uint64
	// Snapshot returns every record and the revision they are at.
	Snapshot() ([]Record, uint64)
	// Restore replaces everything with recs at rev, applied up to index.
	Restore(recs []Record, rev, index uint64) error
}

// Record is one key of a snapshot: its value and the revision that last
// wrote it.
type Record struct {
	Key   string
	Value []byte
	Rev   uint64
}

// result is an applied entry's outcome, the ApplyFuture's Response.
type result struct {
	rev uint64
	err error
}

// fsm is raft's view of the State. raft calls Apply, Snapshot and Restore
// from its one FSM goroutine, never concurrently.
type fsm struct{ state State }

func (f *fsm) Apply(l *raft.Log) any {
	rev, err := f.state.Apply(l.Index, l.Data)
	if err != nil {
		err = fmt.Errorf("apply entry %d: %w", l.Index, err)
	}
	return result{rev: rev, err: err}
}

// Snapshot captures the state as of the last applied entry. raft does not
// call Apply while it runs, so records and index agree.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	recs, rev := f.state.Snapshot()
	return &snapshot{recs: recs, rev: rev, index: f.state.AppliedIndex()}, nil
}

// Restore replaces the state with a snapshot another node (or this one,
// at start) took. A snapshot that fails its checksum or does not parse
// changes nothing.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: read: %w", err)
	}
	snap, err := decodeSnapshot(b)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	// A persisted state already past the snapshot (raft restores the
	// latest snapshot at every start) holds everything in it: committed
	// entries are the same on every node. Rewriting it would only cost a
	// full write of the state; raft's replay of the entries after the
	// snapshot skips those applied already.
	if snap.index <= f.state.AppliedIndex() {
		return nil
	}
	if err := f.state.Restore(snap.recs, snap.rev, snap.index); err != nil {
		return fmt.Errorf("restore snapshot at index %d: %w", snap.index, err)
	}
	return nil
}

type snapshot struct {
	recs  []Record
	rev   uint64
	index uint64
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(encodeSnapshot(s)); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (*snapshot) Release() {}
