package runtime

import (
	"net/netip"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// read is the store's networks and hosts (of every lab), once per
// reconcile. A record that does not decode is logged and left out: the
// other hosts still run.
func (r *Runtime) read() lab.All {
	all, err := lab.ReadAll(r.cfg.Store)
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

// desired is the hosts placed on this node, by resource name, each with
// the networks it attaches to and its key (the spec without impairments
// and those networks: a change restarts the host).
func (r *Runtime) desired(st lab.All) map[string]*desired {
	marshal := proto.MarshalOptions{Deterministic: true}
	want := map[string]*desired{}
	for _, h := range st.Hosts {
		if h.Node != r.cfg.Node {
			continue
		}
		d := &desired{spec: h, nets: map[string]*labv1.Network{}}
		key, _ := marshal.Marshal(withoutImpairments(h))
		for _, ifc := range h.Interfaces {
			n := st.Network(h, ifc.Network)
			if n == nil {
				continue
			}
			d.nets[ifc.Network] = n
			nb, _ := marshal.Marshal(n)
			key = append(key, nb...)
		}
		d.key = key
		want[h.Name] = d
	}
	return want
}
