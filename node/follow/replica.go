// Package follow keeps members' replicas of the desired state: control
// nodes serve ControlService.Follow from their store (Server), and members
// run a Follower that streams it into their own persisted replica.
//
// The protocol is etcd's watch and Kubernetes' list-then-watch: the member
// asks from the revision its replica is at; the control node answers with
// every change after it from its bounded history, or with a snapshot when
// that history no longer reaches back so far; then it streams each change
// as it is committed, and a heartbeat every second so that the member
// knows how fresh its copy is even when nothing changes.
package follow

import "github.com/labnet-dev/labnet/node/store"

// Record, Op and Change are node/store's: a key with its value and the
// revision that last wrote it; one put (Value non-nil) or delete (Value
// nil); one applied batch, Rev being the store's revision after it.
type (
	Record = store.Record
	Op     = store.Op
	Change = store.Change
)

// ErrCompacted is node/store's: Since was asked for a revision its history
// no longer reaches (or one ahead of the store).
var ErrCompacted = store.ErrCompacted

// The store serves Follow on control nodes and is the replica on members.
var (
	_ Source  = (*store.Store)(nil)
	_ Replica = (*store.Store)(nil)
)

// Source is what a control node serves Follow from: its store.
type Source interface {
	// Revision is the store's current revision.
	Revision() uint64
	// Snapshot is every record, sorted by key, and the revision it is at.
	Snapshot() ([]Record, uint64)
	// Since returns the changes after rev, in order; ErrCompacted when
	// they are no longer all known.
	Since(rev uint64) ([]Change, error)
	// Subscribe signals (coalesced) after every change until cancel.
	Subscribe() (<-chan struct{}, func())
}

// Replica is what a member's follower writes: its persisted store.
type Replica interface {
	// Revision is the revision the replica is at (0: empty).
	Revision() uint64
	// Restore replaces everything with recs at rev (index is the Raft
	// index, 0 on members), persisted.
	Restore(recs []Record, rev uint64, index uint64) error
	// ApplyChange applies one change; c.Rev must follow Revision() (a
	// gap is an error).
	ApplyChange(c Change) error
	// Err is the first persistence failure, nil while healthy.
	Err() error
}
