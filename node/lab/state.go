package lab

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// State is one lab's desired state, read from and written to the store as
// one record per resource.
type State struct {
	ID       string
	Lab      *labv1.Lab                // nil when the lab does not exist
	Networks map[string]*labv1.Network // by network id
	Hosts    map[string]*labv1.Host    // by host id
}

// NewState is an empty state of lab id: no lab record, no resources.
func NewState(id string) *State {
	return &State{ID: id, Networks: map[string]*labv1.Network{}, Hosts: map[string]*labv1.Host{}}
}

// Reader is what the model reads from: a store or a write transaction.
type Reader interface {
	List(prefix string) []store.Record
}

var marshal = proto.MarshalOptions{Deterministic: true}

// Load reads lab's state.
func Load(r Reader, lab string) (*State, error) {
	st := NewState(lab)
	for _, rec := range r.List(scanPrefix(lab)) {
		k, ok := ParseKey(rec.Key)
		if !ok || k.Lab != lab {
			continue
		}
		if err := st.add(k, rec.Value); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// LoadAll reads the state of every lab that has a record, sorted by id.
func LoadAll(r Reader) ([]*State, error) {
	byID := map[string]*State{}
	for _, rec := range r.List(scanPrefix("")) {
		k, ok := ParseKey(rec.Key)
		if !ok {
			continue
		}
		st := byID[k.Lab]
		if st == nil {
			st = NewState(k.Lab)
			byID[k.Lab] = st
		}
		if err := st.add(k, rec.Value); err != nil {
			return nil, err
		}
	}
	out := make([]*State, 0, len(byID))
	for _, id := range SortedKeys(byID) {
		out = append(out, byID[id])
	}
	return out, nil
}

// add decodes the record at k into st.
func (st *State) add(k Key, value []byte) error {
	switch k.Kind {
	case KindLab:
		l := &labv1.Lab{}
		if err := proto.Unmarshal(value, l); err != nil {
			return fmt.Errorf("record %s: %w", k, err)
		}
		st.Lab = l
	case KindNetwork:
		n := &labv1.Network{}
		if err := proto.Unmarshal(value, n); err != nil {
			return fmt.Errorf("record %s: %w", k, err)
		}
		st.Networks[k.ID] = n
	case KindHost:
		h := &labv1.Host{}
		if err := proto.Unmarshal(value, h); err != nil {
			return fmt.Errorf("record %s: %w", k, err)
		}
		st.Hosts[k.ID] = h
	}
	return nil
}

// Clone is a deep copy of st.
func (st *State) Clone() *State {
	c := NewState(st.ID)
	if st.Lab != nil {
		c.Lab = proto.CloneOf(st.Lab)
	}
	for k, v := range st.Networks {
		c.Networks[k] = proto.CloneOf(v)
	}
	for k, v := range st.Hosts {
		c.Hosts[k] = proto.CloneOf(v)
	}
	return c
}

// UsersOf lists, sorted, the hosts with an interface on network id.
func (st *State) UsersOf(id string) []string {
	var users []string
	for _, hid := range SortedKeys(st.Hosts) {
		for _, ifc := range st.Hosts[hid].Interfaces {
			if ifc.Network == id {
				users = append(users, hid)
				break
			}
		}
	}
	return users
}

// SortedKeys is m's keys in order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Write stores in tx every difference between old and next (the same lab).
// The lab record goes when next.Lab is nil.
func Write(tx *store.Tx, old, next *State) error {
	put := func(key string, before, after proto.Message) error {
		if isNil(after) {
			if !isNil(before) {
				tx.Delete(key)
			}
			return nil
		}
		if !isNil(before) && proto.Equal(before, after) {
			return nil
		}
		b, err := marshal.Marshal(after)
		if err != nil {
			return fmt.Errorf("record %s: %w", key, err)
		}
		tx.Put(key, b)
		return nil
	}
	if err := put(LabName(next.ID), old.Lab, next.Lab); err != nil {
		return err
	}
	for _, id := range union(old.Networks, next.Networks) {
		if err := put(NetworkName(next.ID, id), old.Networks[id], next.Networks[id]); err != nil {
			return err
		}
	}
	for _, id := range union(old.Hosts, next.Hosts) {
		if err := put(HostName(next.ID, id), old.Hosts[id], next.Hosts[id]); err != nil {
			return err
		}
	}
	return nil
}

func union[V any](a, b map[string]V) []string {
	keys := SortedKeys(a)
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// isNil reports a nil message, typed or not.
func isNil(m proto.Message) bool {
	return m == nil || !m.ProtoReflect().IsValid()
}
