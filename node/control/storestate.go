package control

import (
	"fmt"

	"github.com/labnet-dev/labnet/node/store"
)

// StoreState is the State of node/store's revisioned Store: a proposal is
// the batch store.Read makes of fn (its writes, and one condition per key
// read or prefix listed), and a log entry is that batch as store.EncodeBatch
// writes it. The store records the raft index with every batch, so a
// restart replays only what it has not applied.
func StoreState(st *store.Store) State { return storeState{st} }

type storeState struct{ st *store.Store }

func (s storeState) Propose(fn func(*store.Tx) error) ([]byte, error) {
	b, err := s.st.Read(fn)
	if err != nil {
		return nil, err
	}
	return store.EncodeBatch(b), nil
}

func (s storeState) Apply(index uint64, entry []byte) (uint64, error) {
	b, err := store.DecodeBatch(entry)
	if err != nil {
		return 0, fmt.Errorf("decode entry: %w", err)
	}
	return s.st.ApplyIndexed(index, b)
}

func (s storeState) AppliedIndex() uint64 { return s.st.AppliedIndex() }

func (s storeState) Snapshot() ([]Record, uint64) {
	recs, rev := s.st.Snapshot()
	out := make([]Record, len(recs))
	for i, r := range recs {
		out[i] = Record{Key: r.Key, Value: r.Value, Rev: r.Rev}
	}
	return out, rev
}

func (s storeState) Restore(recs []Record, rev, index uint64) error {
	in := make([]store.Record, len(recs))
	for i, r := range recs {
		in[i] = store.Record{Key: r.Key, Value: r.Value, Rev: r.Rev}
	}
	return s.st.Restore(in, rev, index)
}
