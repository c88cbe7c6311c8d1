package lab

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// All is every lab's networks and hosts, read at once: what the runtime
// runs and what failover moves.
type All struct {
	Networks map[string]*labv1.Network // by resource name
	Hosts    []*labv1.Host             // sorted by resource name
}

// ReadAll reads every network and host. Records that do not decode are
// left out and reported in err (joined), so that one bad record does not
// stop a node from running the others.
func ReadAll(r Reader) (All, error) {
	all := All{Networks: map[string]*labv1.Network{}}
	var errs []error
	for _, rec := range r.List(scanPrefix("")) {
		k, ok := ParseKey(rec.Key)
		if !ok {
			continue
		}
		switch k.Kind {
		case KindNetwork:
			n := &labv1.Network{}
			if err := proto.Unmarshal(rec.Value, n); err != nil {
				errs = append(errs, fmt.Errorf("record %s: %w", rec.Key, err))
				continue
			}
			all.Networks[rec.Key] = n
		case KindHost:
			h := &labv1.Host{}
			if err := proto.Unmarshal(rec.Value, h); err != nil {
				errs = append(errs, fmt.Errorf("record %s: %w", rec.Key, err))
				continue
			}
			all.Hosts = append(all.Hosts, h)
		}
	}
	return all, errors.Join(errs...)
}

// Network is the network id that an interface of host h names (an
// interface names a network by id within the host's lab); nil when it is
// not (yet) stored.
func (a All) Network(h *labv1.Host, id string) *labv1.Network {
	return a.Networks[NetworkOf(h, id)]
}

// NetworkOf is the resource name of network id of host h's lab; "" when
// h.Name is not a host name.
func NetworkOf(h *labv1.Host, id string) string {
	lab, _, ok := ParseHostName(h.GetName())
	if !ok {
		return ""
	}
	return NetworkName(lab, id)
}

// HostsPerNode counts hosts by the node they are placed on.
func HostsPerNode(hosts []*labv1.Host) map[string]int {
	counts := map[string]int{}
	for _, h := range hosts {
		counts[h.Node]++
	}
	return counts
}

// GetHost reads host id of lab; ok is false when there is none.
func GetHost(s *store.Store, lab, id string) (h *labv1.Host, ok bool, err error) {
	h = &labv1.Host{}
	ok, err = get(s, HostName(lab, id), h)
	return h, ok, err
}

// GetNetwork reads network id of lab; ok is false when there is none.
func GetNetwork(s *store.Store, lab, id string) (n *labv1.Network, ok bool, err error) {
	n = &labv1.Network{}
	ok, err = get(s, NetworkName(lab, id), n)
	return n, ok, err
}

func get(s *store.Store, key string, m proto.Message) (bool, error) {
	rec, ok := s.Get(key)
	if !ok {
		return false, nil
	}
	if err := proto.Unmarshal(rec.Value, m); err != nil {
		return false, fmt.Errorf("record %s: %w", key, err)
	}
	return true, nil
}

// PutHost writes h at its resource name.
func PutHost(tx *store.Tx, h *labv1.Host) error {
	if _, _, ok := ParseHostName(h.GetName()); !ok {
		return fmt.Errorf("put host: %q is not a host name", h.GetName())
	}
	return put(tx, h.Name, h)
}

// PutNetwork writes n at its resource name.
func PutNetwork(tx *store.Tx, n *labv1.Network) error {
	if _, _, ok := ParseNetworkName(n.GetName()); !ok {
		return fmt.Errorf("put network: %q is not a network name", n.GetName())
	}
	return put(tx, n.Name, n)
}

// PutLab writes l at its resource name.
func PutLab(tx *store.Tx, l *labv1.Lab) error {
	if _, ok := ParseLabName(l.GetName()); !ok {
		return fmt.Errorf("put lab: %q is not a lab name", l.GetName())
	}
	return put(tx, l.Name, l)
}

func put(tx *store.Tx, key string, m proto.Message) error {
	b, err := marshal.Marshal(m)
	if err != nil {
		return fmt.Errorf("record %s: %w", key, err)
	}
	tx.Put(key, b)
	return nil
}

// Delete removes the record of the lab, network or host named name.
func Delete(tx *store.Tx, name string) error {
	if _, ok := ParseKey(name); !ok {
		return fmt.Errorf("delete: %q is not a lab, network or host name", name)
	}
	tx.Delete(name)
	return nil
}

// ListNetworks reads the networks of lab, or of every lab when lab is "".
func ListNetworks(r Reader, lab string) ([]*labv1.Network, error) {
	return list(r, lab, KindNetwork, func() *labv1.Network { return &labv1.Network{} })
}

// ListHosts reads the hosts of lab, or of every lab when lab is "".
func ListHosts(r Reader, lab string) ([]*labv1.Host, error) {
	return list(r, lab, KindHost, func() *labv1.Host { return &labv1.Host{} })
}

func list[M proto.Message](r Reader, lab string, kind Kind, alloc func() M) ([]M, error) {
	var out []M
	for _, rec := range r.List(scanPrefix(lab)) {
		k, ok := ParseKey(rec.Key)
		if !ok || k.Kind != kind || !inLab(k, lab) {
			continue
		}
		m := alloc()
		if err := proto.Unmarshal(rec.Value, m); err != nil {
			return nil, fmt.Errorf("record %s: %w", rec.Key, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Record is one stored resource, undecoded: its parsed key and its encoding.
type Record struct {
	Key   Key
	Value []byte
}

// Snapshot is every record of lab (of every lab when lab is "") with the
// store revision it reflects, read at once (for watches).
func Snapshot(s *store.Store, lab string) ([]Record, uint64) {
	recs, rev := s.ListRev(scanPrefix(lab))
	out := make([]Record, 0, len(recs))
	for _, rec := range recs {
		if k, ok := ParseKey(rec.Key); ok && inLab(k, lab) {
			out = append(out, Record{Key: k, Value: rec.Value})
		}
	}
	return out, rev
}
