package lab

import (
	"hash/fnv"

	"google.golang.org/protobuf/proto"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// VNIs is a set of VNIs in use. VNIs are global: they pick the network on
// the overlay (RFC 8926 §3.4), so a network's VNI is unique across labs.
type VNIs map[uint32]bool

// UsedVNIs reads the VNIs of every stored network.
func UsedVNIs(r Reader) VNIs {
	used := VNIs{}
	for _, rec := range r.List(scanPrefix("")) {
		if k, ok := ParseKey(rec.Key); !ok || k.Kind != KindNetwork {
			continue
		}
		n := &labv1.Network{}
		if proto.Unmarshal(rec.Value, n) == nil {
			used[n.Vni] = true
		}
	}
	return used
}

// Assign picks the VNI of network name and marks it used: a hash of its
// name, probed past the VNIs in use, so that every node derives the same
// value. VNI 0 is never given.
func (used VNIs) Assign(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	v := h.Sum32() & 0xffffff
	for v == 0 || used[v] {
		v = (v + 1) & 0xffffff
	}
	used[v] = true
	return v
}
