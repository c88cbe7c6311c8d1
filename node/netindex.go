package node

import (
	"net/netip"

	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/overlay"
	"github.com/labnet-dev/labnet/stack/wire"
)

// netIndex says which node may send into which virtual network with which
// source address, from the desired state: a node runs an interface on the
// network of VNI v when the state places there a host with an interface
// on v's network, and then may send with that interface's addresses, or
// with any address if the host forwards (a router sends what it routes
// with the packets' own sources). Lookups are O(1): two or three map
// reads per packet.
type netIndex struct {
	onNet map[nodeVNI]bool // a host of the node has an interface on v
	fwd   map[nodeVNI]bool // one of them forwards
	addrs map[nodeVNIAddr]bool
}

type nodeVNI struct {
	node string
	vni  uint32
}

type nodeVNIAddr struct {
	nodeVNI
	addr netip.Addr
}

// newNetIndex indexes the hosts and networks of all.
func newNetIndex(all lab.All) *netIndex {
	x := &netIndex{onNet: map[nodeVNI]bool{}, fwd: map[nodeVNI]bool{}, addrs: map[nodeVNIAddr]bool{}}
	for _, h := range all.Hosts {
		if h.GetNode() == "" {
			continue
		}
		for _, ifc := range h.GetInterfaces() {
			n := all.Network(h, ifc.GetNetwork())
			if n == nil || n.GetVni() == 0 {
				continue
			}
			k := nodeVNI{h.GetNode(), n.GetVni()}
			x.onNet[k] = true
			if h.GetForwarding() {
				x.fwd[k] = true
			}
			for _, s := range []string{ifc.GetIpv4(), ifc.GetIpv6()} {
				if a, ok := parseIfaceAddr(s); ok {
					x.addrs[nodeVNIAddr{k, a}] = true
				}
			}
		}
	}
	return x
}

// parseIfaceAddr reads an interface address, with or without a prefix
// length.
func parseIfaceAddr(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err == nil
}

// admit says whether node may send pkt (an IP packet) into the network of
// vni. IPv6 packets from link-local or unspecified sources (neighbour
// discovery, duplicate address detection) need only an interface on the
// network: their scope is the link.
func (x *netIndex) admit(node string, vni uint32, pkt []byte) overlay.Admission {
	k := nodeVNI{node, vni}
	if !x.onNet[k] {
		return overlay.NotOnNetwork
	}
	if x.fwd[k] {
		return overlay.Admit
	}
	src, ok := innerSource(pkt)
	if !ok {
		return overlay.SpoofedSource
	}
	if src.Is6() && (src.IsLinkLocalUnicast() || src.IsUnspecified()) {
		return overlay.Admit
	}
	if x.addrs[nodeVNIAddr{k, src}] {
		return overlay.Admit
	}
	return overlay.SpoofedSource
}

// innerSource is the source address of an IPv4 or IPv6 packet (RFC 791
// section 3.1, RFC 8200 section 3), read with the stack's header views.
func innerSource(pkt []byte) (netip.Addr, bool) {
	if len(pkt) == 0 {
		return netip.Addr{}, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < wire.IPv4MinHeaderLen {
			return netip.Addr{}, false
		}
		return wire.IPv4(pkt).Src(), true
	case 6:
		if len(pkt) < wire.IPv6HeaderLen {
			return netip.Addr{}, false
		}
		return wire.IPv6(pkt).Src(), true
	}
	return netip.Addr{}, false
}
