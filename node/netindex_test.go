package node

import (
	"net/netip"
	"testing"

	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/overlay"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func TestNetIndex(t *testing.T) {
	n1, n2 := lab.NetworkName("l", "n1"), lab.NetworkName("l", "n2")
	x := newNetIndex(lab.All{
		Networks: map[string]*labv1.Network{n1: {Name: n1, Vni: 1}, n2: {Name: n2, Vni: 2}},
		Hosts: []*labv1.Host{
			{Name: lab.HostName("l", "h1"), Node: "a", Interfaces: []*labv1.Interface{{Network: "n1", Ipv4: "10.0.1.1/24", Ipv6: "fd00::1/64"}}},
			{Name: lab.HostName("l", "r1"), Node: "b", Forwarding: true, Interfaces: []*labv1.Interface{{Network: "n1", Ipv4: "10.0.1.254"}, {Network: "n2", Ipv4: "10.0.2.254/24"}}},
			{Name: lab.HostName("l", "h9"), Interfaces: []*labv1.Interface{{Network: "n2", Ipv4: "10.0.2.9/24"}}}, // not placed
		},
	})
	v6 := func(src string) []byte {
		p := make([]byte, 40)
		p[0] = 0x60
		a := netip.MustParseAddr(src).As16()
		copy(p[8:], a[:])
		return p
	}
	for _, tc := range []struct {
		name string
		node string
		vni  uint32
		pkt  []byte
		want overlay.Admission
	}{
		{"its address", "a", 1, ipv4Packet("10.0.1.1", "10.0.1.2", nil), overlay.Admit},
		{"its IPv6 address", "a", 1, v6("fd00::1"), overlay.Admit},
		{"link-local IPv6", "a", 1, v6("fe80::1234"), overlay.Admit},
		{"another source", "a", 1, ipv4Packet("10.0.1.2", "10.0.1.1", nil), overlay.SpoofedSource},
		{"another host's IPv6 source", "a", 1, v6("fd00::2"), overlay.SpoofedSource},
		{"not an IP packet", "a", 1, []byte{0x45, 0}, overlay.SpoofedSource},
		{"a network it is not on", "a", 2, ipv4Packet("10.0.1.1", "10.0.2.9", nil), overlay.NotOnNetwork},
		{"a router forwards any source", "b", 2, ipv4Packet("10.0.1.1", "10.0.2.9", nil), overlay.Admit},
		{"an unknown node", "c", 1, ipv4Packet("10.0.1.1", "10.0.1.2", nil), overlay.NotOnNetwork},
		{"a host not placed gives no node a network", "", 2, ipv4Packet("10.0.2.9", "10.0.2.1", nil), overlay.NotOnNetwork},
	} {
		if got := x.admit(tc.node, tc.vni, tc.pkt); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
