package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/labnet-dev/labnet/node/store"
)

// errFakeConflict is the fake state's store.ErrConflict.
var errFakeConflict = errors.New("fake: conflict")

// fakeState is an in-memory revisioned key-value state: the raft wiring's
// tests run on it, not on node/store's files. Its entries are JSON: the
// keys written, and the revision each key read was at.
type fakeState struct {
	mu      sync.Mutex
	vals    map[string]Record
	rev     uint64
	applied uint64
}

type fakeEntry struct {
	Conds map[string]uint64 // key -> revision it was read at
	Puts  map[string]string
}

func newFakeState() *fakeState { return &fakeState{vals: map[string]Record{}} }

func (f *fakeState) Propose(func(*store.Tx) error) ([]byte, error) {
	return nil, errors.New("fake state: propose through Control.update")
}

// read returns key's value and revision (0 when absent).
func (f *fakeState) read(key string) (string, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.vals[key]
	return string(r.Value), r.Rev
}

// put proposes key=value conditioned on key being at readRev.
func put(key, value string, readRev uint64) func() ([]byte, error) {
	return func() ([]byte, error) {
		return json.Marshal(fakeEntry{Conds: map[string]uint64{key: readRev}, Puts: map[string]string{key: value}})
	}
}

// blind proposes key=value with no condition.
func blind(key, value string) func() ([]byte, error) {
	return func() ([]byte, error) { return json.Marshal(fakeEntry{Puts: map[string]string{key: value}}) }
}

func (f *fakeState) Apply(index uint64, entry []byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if index <= f.applied {
		return f.rev, nil
	}
	var e fakeEntry
	if err := json.Unmarshal(entry, &e); err != nil {
		return 0, fmt.Errorf("fake: %w", err)
	}
	f.applied = index
	for k, rev := range e.Conds {
		if f.vals[k].Rev > rev {
			return 0, errFakeConflict
		}
	}
	f.rev++
	for k, v := range e.Puts {
		f.vals[k] = Record{Key: k, Value: []byte(v), Rev: f.rev}
	}
	return f.rev, nil
}

func (f *fakeState) AppliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

func (f *fakeState) Snapshot() ([]Record, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Record
	for _, r := range f.vals {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, f.rev
}

func (f *fakeState) Restore(recs []Record, rev, index uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vals = map[string]Record{}
	for _, r := range recs {
		f.vals[r.Key] = r
	}
	f.rev, f.applied = rev, index
	return nil
}

// values returns the state as key -> value.
func (f *fakeState) values() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, r := range f.vals {
		out[k] = string(r.Value)
	}
	return out
}
