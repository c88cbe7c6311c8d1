package api

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// labState is one lab's desired state, read from and written to the store
// as one record per resource (keys are the resource names).
type labState struct {
	id    string
	lab   *labv1.Lab // nil when the lab does not exist
	nets  map[string]*labv1.Network
	hosts map[string]*labv1.Host
}

var marshal = proto.MarshalOptions{Deterministic: true}

// lister is what loadLab reads from: a store or a write transaction.
type lister interface {
	List(prefix string) []store.Record
}

func loadLab(r lister, lab string) (*labState, error) {
	st := &labState{id: lab, nets: map[string]*labv1.Network{}, hosts: map[string]*labv1.Host{}}
	for _, rec := range r.List(labName(lab)) {
		switch {
		case rec.Key == labName(lab):
			st.lab = &labv1.Lab{}
			if err := proto.Unmarshal(rec.Value, st.lab); err != nil {
				return nil, fmt.Errorf("record %s: %w", rec.Key, err)
			}
		case strings.HasPrefix(rec.Key, networksPrefix(lab)):
			n := &labv1.Network{}
			if err := proto.Unmarshal(rec.Value, n); err != nil {
				return nil, fmt.Errorf("record %s: %w", rec.Key, err)
			}
			st.nets[lastSegment(rec.Key)] = n
		case strings.HasPrefix(rec.Key, hostsPrefix(lab)):
			h := &labv1.Host{}
			if err := proto.Unmarshal(rec.Value, h); err != nil {
				return nil, fmt.Errorf("record %s: %w", rec.Key, err)
			}
			st.hosts[lastSegment(rec.Key)] = h
		}
	}
	return st, nil
}

func (st *labState) clone() *labState {
	c := &labState{id: st.id, nets: map[string]*labv1.Network{}, hosts: map[string]*labv1.Host{}}
	if st.lab != nil {
		c.lab = proto.Clone(st.lab).(*labv1.Lab)
	}
	for k, v := range st.nets {
		c.nets[k] = proto.Clone(v).(*labv1.Network)
	}
	for k, v := range st.hosts {
		c.hosts[k] = proto.Clone(v).(*labv1.Host)
	}
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// write stores every difference between old and next in tx. The lab record
// goes when next.lab is nil.
func write(tx *store.Tx, old, next *labState) error {
	put := func(key string, before, after proto.Message) error {
		if after == nil || isNil(after) {
			if before != nil && !isNil(before) {
				tx.Delete(key)
			}
			return nil
		}
		if before != nil && !isNil(before) && proto.Equal(before, after) {
			return nil
		}
		b, err := marshal.Marshal(after)
		if err != nil {
			return err
		}
		tx.Put(key, b)
		return nil
	}
	if err := put(labName(next.id), msg(old.lab), msg(next.lab)); err != nil {
		return err
	}
	for _, id := range union(old.nets, next.nets) {
		if err := put(networkName(next.id, id), msg(old.nets[id]), msg(next.nets[id])); err != nil {
			return err
		}
	}
	for _, id := range union(old.hosts, next.hosts) {
		if err := put(hostName(next.id, id), msg(old.hosts[id]), msg(next.hosts[id])); err != nil {
			return err
		}
	}
	return nil
}

func union[V any](a, b map[string]V) []string {
	keys := sortedKeys(a)
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// msg turns a typed nil pointer into a nil interface.
func msg[T proto.Message](m T) proto.Message {
	if isNil(m) {
		return nil
	}
	return m
}

func isNil(m proto.Message) bool {
	return m == nil || !m.ProtoReflect().IsValid()
}

// action reports what writing after over before does.
func action(before, after proto.Message) labv1.ChangeAction {
	switch {
	case before == nil:
		return labv1.ChangeAction_CHANGE_ACTION_CREATED
	case proto.Equal(before, after):
		return labv1.ChangeAction_CHANGE_ACTION_UNCHANGED
	default:
		return labv1.ChangeAction_CHANGE_ACTION_CONFIGURED
	}
}

// vniFor picks a network's 24-bit VNI: a hash of its name, probed past the
// VNIs already in use, so that every node derives the same value.
func vniFor(name string, used map[uint32]bool) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	v := h.Sum32() & 0xffffff
	for v == 0 || used[v] {
		v = (v + 1) & 0xffffff
	}
	return v
}
