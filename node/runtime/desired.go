package runtime

import (
	"crypto/sha256"
	"net/netip"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// read is the store's networks and hosts (of every lab), once per
// reconcile, decoding only the records that changed since the last read.
// A record that does not decode is logged and left out: the other hosts
// still run.
func (r *Runtime) read() lab.All {
	all, err := r.decoder.ReadAll(r.cfg.Store)
	if err != nil {
		r.cfg.Logger.Warn("desired state: records left out", "err", err)
	}
	return all
}

// updateRemote tells the fabric, for every network, its VNI and which of
// its addresses belong to hosts placed on other live nodes, and where
// those nodes' overlays are.
func (r *Runtime) updateRemote(st lab.All) {
	if r.cfg.Peers == nil {
		return
	}
	peers := r.cfg.Peers()
	remote := map[string]map[netip.Addr]netip.AddrPort{} // by network name
	for name := range st.Networks {
		remote[name] = map[netip.Addr]netip.AddrPort{}
	}
	for _, h := range st.Hosts {
		if h.Node == r.cfg.Node {
			continue
		}
		peer, ok := peers[h.Node]
		if !ok {
			continue
		}
		for _, ifc := range h.Interfaces {
			m := remote[lab.NetworkOf(h, ifc.Network)]
			if m == nil {
				continue
			}
			for _, a := range []string{ifc.Ipv4, ifc.Ipv6} {
				if p, err := netip.ParsePrefix(a); err == nil {
					m[p.Addr()] = peer
				}
			}
		}
	}
	for name, n := range st.Networks {
		r.cfg.Fabric.SetNetwork(name, n.Vni, remote[name])
	}
}

// desired is the hosts placed on this node, by resource name (without
// the movable ones while the node is fenced: Config.Fenced), each with
// the networks it attaches to and its key: a hash of the spec without
// impairments and of those networks (a change restarts the host). The
// hashes of records read unchanged (the same pointer from the decoder)
// are kept from the last reconcile rather than computed again.
func (r *Runtime) desired(st lab.All) map[string]*desired {
	specs := make(map[*labv1.Host]specKey, len(r.specKeys))
	nets := make(map[*labv1.Network]specKey, len(st.Networks))
	netKey := func(n *labv1.Network) specKey {
		k, ok := nets[n]
		if !ok {
			if k, ok = r.netKeys[n]; !ok {
				k = hashOf(n)
			}
			nets[n] = k
		}
		return k
	}
	want := map[string]*desired{}
	var buf []byte
	fenced := r.cfg.Fenced != nil && r.cfg.Fenced()
	removed := r.cfg.Removed != nil && r.cfg.Removed()
	for _, h := range st.Hosts {
		if h.Node != r.cfg.Node || fenced && movable(h) || removed {
			continue
		}
		sk, ok := r.specKeys[h]
		if !ok {
			sk = hashOf(withoutImpairments(h))
		}
		specs[h] = sk
		d := &desired{spec: h, nets: make([]*labv1.Network, len(h.Interfaces))}
		buf = append(buf[:0], sk[:]...)
		for i, ifc := range h.Interfaces {
			n := st.Network(h, ifc.Network)
			if n == nil {
				continue
			}
			d.nets[i] = n
			nk := netKey(n)
			buf = append(buf, nk[:]...)
		}
		d.key = sha256.Sum256(buf)
		want[h.Name] = d
	}
	r.specKeys, r.netKeys = specs, nets
	return want
}

// specKey is a SHA-256 hash of a host's spec, of a network, or of a host
// with its networks: a running host keeps 32 bytes to notice changes, not
// its marshalled spec.
type specKey = [sha256.Size]byte

func hashOf(m proto.Message) specKey {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	return sha256.Sum256(b)
}

// movable reports whether the leader's failover may place h on another
// node: neither pinned by its topology nor opted out.
func movable(h *labv1.Host) bool { return !h.Pinned && !h.NoFailover }
