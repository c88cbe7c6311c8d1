package stack_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// TestPathRouting makes a path to each destination of routingCases and
// checks the source it chose and where its packets leave.
func TestPathRouting(t *testing.T) {
	s, hops := routingStack(t, false, true)
	for _, tc := range routingCases {
		t.Run(tc.name, func(t *testing.T) {
			*hops = nil
			p, err := s.NewPath(netip.Addr{}, netip.MustParseAddr(tc.dst), wire.ProtoUDP)
			if err != nil {
				t.Fatal(err)
			}
			if p.Src() != netip.MustParseAddr(tc.wantSrc) || p.NIC().Name() != tc.wantNIC || p.MTU() != 1500 || p.Err() != nil {
				t.Errorf("path src %v NIC %s MTU %d err %v; want src %s NIC %s MTU 1500", p.Src(), p.NIC().Name(), p.MTU(), p.Err(), tc.wantSrc, tc.wantNIC)
			}
			pkt, _ := p.NewPacket(8)
			if err := p.WritePacket(pkt); err != nil {
				t.Fatal(err)
			}
			want := []hop{{tc.wantNIC, netip.MustParseAddr(tc.wantHop)}}
			if diff := cmp.Diff(want, *hops, cmpOpts...); diff != "" {
				t.Errorf("hops (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPathFollowsRouteChanges changes the routing table under a path: the
// path is resolved again after each change (and only then), keeps its
// source address, and reports a missing route until one comes back.
func TestPathFollowsRouteChanges(t *testing.T) {
	s, hops := routingStack(t, false, false)
	dst := netip.MustParseAddr("10.2.3.4")
	p, err := s.NewPath(netip.Addr{}, dst, wire.ProtoTCP)
	if err != nil {
		t.Fatal(err)
	}
	send := func(step string, want hop) {
		t.Helper()
		*hops = nil
		pkt, _ := p.NewPacket(20)
		if err := p.WritePacket(pkt); err != nil {
			t.Fatalf("%s: WritePacket: %v", step, err)
		}
		if diff := cmp.Diff([]hop{want}, *hops, cmpOpts...); diff != "" {
			t.Errorf("%s: hops (-want +got):\n%s", step, diff)
		}
		if !p.Valid() {
			t.Errorf("%s: path not valid after a send", step)
		}
	}
	eth0 := hop{"eth0", netip.MustParseAddr("10.1.0.7")}
	eth1 := hop{"eth1", netip.MustParseAddr("10.1.2.200")}
	eth2 := hop{"eth2", netip.MustParseAddr("192.168.0.9")}
	src := netip.MustParseAddr("192.168.0.1") // chosen for the /32's interface
	send("the /32", eth2)

	change := func(step string, f func() error) {
		t.Helper()
		gen := s.RouteGeneration()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if s.RouteGeneration() != gen+1 {
			t.Errorf("%s: generation %d, want %d", step, s.RouteGeneration(), gen+1)
		}
		if p.Valid() {
			t.Errorf("%s: path still valid", step)
		}
	}
	change("remove the /32", func() error { return s.RemoveRoute(netip.MustParsePrefix("10.2.3.4/32")) })
	send("the /24", eth0)
	change("remove the /24", func() error { return s.RemoveRoute(netip.MustParsePrefix("10.2.3.0/24")) })
	send("the /16", eth1)
	change("remove the /16", func() error { return s.RemoveRoute(netip.MustParsePrefix("10.2.0.0/16")) })
	pkt, _ := p.NewPacket(20)
	if err := p.WritePacket(pkt); !errors.Is(err, stack.ErrNoRoute) || !errors.Is(p.Err(), stack.ErrNoRoute) || p.MTU() != 0 || p.NIC() != nil {
		t.Errorf("without a route: WritePacket = %v, Err = %v, MTU %d, NIC %v; want ErrNoRoute, 0, nil", err, p.Err(), p.MTU(), p.NIC())
	}
	change("add the /32 back", func() error {
		return s.AddRoute(netip.MustParsePrefix("10.2.3.4/32"), netip.MustParseAddr("192.168.0.9"))
	})
	send("the /32 again", eth2)
	change("a shorter route elsewhere", func() error {
		return s.AddRoute(netip.MustParsePrefix("10.2.3.4/31"), netip.MustParseAddr("10.1.0.7"))
	})
	send("the /32 still", eth2)
	if p.Src() != src {
		t.Errorf("source moved to %v, want %v", p.Src(), src)
	}
	// Every packet carried the path's source address.
	pkt, _ = p.NewPacket(0)
	if got := wire.IPv4(pkt).Src(); got != src {
		t.Errorf("packet source %v, want %v", got, src)
	}
}

// TestPathFromGivenSource keeps the given source whatever the route's
// interface, and is made even when there is no route.
func TestPathFromGivenSource(t *testing.T) {
	s, hops := routingStack(t, false, false)
	src := netip.MustParseAddr("10.1.0.1")
	p, err := s.NewPath(src, netip.MustParseAddr("10.2.3.4"), wire.ProtoTCP)
	if err != nil || p.Src() != src {
		t.Fatalf("NewPath = %v, src %v", err, p.Src())
	}
	p, err = s.NewPath(src, netip.MustParseAddr("8.8.8.8"), wire.ProtoTCP)
	if err != nil || !errors.Is(p.Err(), stack.ErrNoRoute) {
		t.Fatalf("NewPath without a route = %v, Err %v; want a path with ErrNoRoute", err, p.Err())
	}
	if err := s.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("192.168.0.254")); err != nil {
		t.Fatal(err)
	}
	*hops = nil
	pkt, _ := p.NewPacket(0)
	if err := p.WritePacket(pkt); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]hop{{"eth2", netip.MustParseAddr("192.168.0.254")}}, *hops, cmpOpts...); diff != "" {
		t.Errorf("hops (-want +got):\n%s", diff)
	}
	// Without a given source, no route is an error at once.
	if _, err := s.NewPath(netip.IPv6Unspecified(), netip.MustParseAddr("2001:db8::1"), wire.ProtoTCP); !errors.Is(err, stack.ErrNoRoute) {
		t.Errorf("NewPath(::, unroutable) = %v, want ErrNoRoute", err)
	}
}

// TestPathLocal is a path to one of the host's own addresses: the packet
// loops back into the stack (an echo request, answered to itself).
func TestPathLocal(t *testing.T) {
	n := newNetwork(t)
	h := n.node("h", stack.Config{})
	n.attach(h, "eth0", n.segment("lan"), 1500, "10.0.0.1/24", "fd00::1/64")
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			own := netip.MustParseAddr("10.0.0.1")
			if v6 {
				own = netip.MustParseAddr("fd00::1")
			}
			p, err := h.s.NewPath(netip.Addr{}, own, icmpProto(v6))
			if err != nil {
				t.Fatal(err)
			}
			if p.Src() != own || p.MTU() != 65535 || p.NIC() != nil {
				t.Errorf("src %v MTU %d NIC %v; want %v, 65535, nil", p.Src(), p.MTU(), p.NIC(), own)
			}
			ep := openEcho(t, h, v6)
			m := wire.Echo(wire.ICMPv4Echo, ep.Ident(), 1, []byte("self"))
			pkt, b := p.NewPacket(m.Len())
			if v6 {
				m.Type = wire.ICMPv6EchoRequest
				m.EncodeV6(b, own, own)
			} else {
				m.EncodeV4(b)
			}
			if err := p.WritePacket(pkt); err != nil {
				t.Fatal(err)
			}
			// The request looped back, and so did the answer to it.
			if evs := drain(ep); len(evs) != 1 {
				t.Errorf("echo events %+v, want the reply", evs)
			}
			if got := n.sentBy("h"); len(got) != 0 {
				t.Errorf("sent on a link: %v", got)
			}
		})
	}
}

// TestPathNewPacket checks the header from the path's template against
// the one wire encodes, for random lengths: the same bytes, given the same
// identification.
func TestPathNewPacket(t *testing.T) {
	s, _ := routingStack(t, false, true)
	r := rand.New(rand.NewPCG(1, 2))
	for _, dst := range []string{"10.2.3.4", "8.8.8.8", "fd00:2:3::4"} {
		d := netip.MustParseAddr(dst)
		for _, proto := range []uint8{wire.ProtoTCP, wire.ProtoUDP} {
			p, err := s.NewPath(netip.Addr{}, d, proto)
			if err != nil {
				t.Fatal(err)
			}
			for range 300 {
				n := r.IntN(65536 - 60)
				pkt, payload := p.NewPacket(n)
				if len(payload) != n || len(pkt) != p.Headroom()+n || &pkt[p.Headroom()] != &payload[0] && n > 0 {
					t.Fatalf("NewPacket(%d): packet %d bytes, payload %d", n, len(pkt), len(payload))
				}
				want := make([]byte, len(pkt))
				if d.Is4() {
					if err := wire.IPv4(pkt).Check(); err != nil || !wire.IPv4(pkt).ChecksumValid() {
						t.Fatalf("NewPacket(%d): check %v, checksum valid %v", n, err, wire.IPv4(pkt).ChecksumValid())
					}
					h := wire.IPv4Header{ID: wire.IPv4(pkt).ID(), Flags: wire.IPv4FlagDF, TTL: 64, Protocol: proto, Src: p.Src(), Dst: d}
					h.Encode(want, n)
				} else {
					h := wire.IPv6Header{NextHeader: proto, HopLimit: 64, Src: p.Src(), Dst: d}
					h.Encode(want, n)
				}
				if diff := cmp.Diff(want[:p.Headroom()], pkt[:p.Headroom()]); diff != "" {
					t.Fatalf("NewPacket(%d) to %s header (-want +got):\n%s", n, dst, diff)
				}
			}
		}
	}
}

func TestRemoveRouteErrors(t *testing.T) {
	s, _ := routingStack(t, false, false)
	gen := s.RouteGeneration()
	for _, dst := range []netip.Prefix{{}, netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.9.0.0/16")} {
		if err := s.RemoveRoute(dst); err == nil {
			t.Errorf("RemoveRoute(%v) succeeded", dst)
		}
	}
	if s.RouteGeneration() != gen {
		t.Errorf("failed removals moved the generation from %d to %d", gen, s.RouteGeneration())
	}
	// The destination is masked, as AddRoute masks it.
	if err := s.RemoveRoute(netip.MustParsePrefix("10.2.3.77/24")); err != nil {
		t.Error(err)
	}
	for _, r := range s.Routes() {
		if r.Dst == netip.MustParsePrefix("10.2.3.0/24") {
			t.Error("10.2.3.0/24 still in the table")
		}
	}
}

func TestNewPathErrors(t *testing.T) {
	s, _ := routingStack(t, false, true)
	if _, err := s.NewPath(netip.MustParseAddr("fd00:1::1"), netip.MustParseAddr("10.2.3.4"), wire.ProtoTCP); !errors.Is(err, stack.ErrAddressFamily) {
		t.Errorf("NewPath(v6, v4) = %v, want ErrAddressFamily", err)
	}
	if _, err := s.NewPath(netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00:2::1"), wire.ProtoTCP); !errors.Is(err, stack.ErrAddressFamily) {
		t.Errorf("NewPath(v4, v6) = %v, want ErrAddressFamily", err)
	}
	if _, err := s.NewPath(netip.Addr{}, netip.Addr{}, wire.ProtoTCP); err == nil {
		t.Error("NewPath to the zero Addr succeeded")
	}
}

// TestPathBuildPacket: BuildPacket makes the packet NewPacket and a copy
// would, header and all.
func TestPathBuildPacket(t *testing.T) {
	s, _ := routingStack(t, false, true)
	r := rand.New(rand.NewPCG(3, 4))
	for _, dst := range []string{"10.2.3.4", "fd00:2:3::4"} {
		p, err := s.NewPath(netip.Addr{}, netip.MustParseAddr(dst), wire.ProtoTCP)
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			parts := make([][]byte, 3)
			for i := range parts {
				parts[i] = make([]byte, r.IntN(3000))
				for j := range parts[i] {
					parts[i][j] = byte(r.Uint32())
				}
			}
			got, payload := p.BuildPacket(parts[0], parts[1], parts[2])
			n := len(parts[0]) + len(parts[1]) + len(parts[2])
			want, wantPayload := p.NewPacket(n)
			copy(wantPayload, slices.Concat(parts...))
			// The identifications differ by one: NewPacket's came next.
			if p.Dst().Is4() {
				h := wire.IPv4(want)
				id := h.ID() - 1
				wh := wire.IPv4Header{ID: id, Flags: wire.IPv4FlagDF, TTL: 64, Protocol: wire.ProtoTCP, Src: p.Src(), Dst: p.Dst()}
				wh.Encode(want, n)
			}
			if !bytes.Equal(got, want) || len(payload) != n {
				t.Fatalf("BuildPacket to %s, parts %d+%d+%d: differs from NewPacket and copy", dst, len(parts[0]), len(parts[1]), len(parts[2]))
			}
		}
	}
}
