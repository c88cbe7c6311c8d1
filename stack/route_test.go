package stack_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// hop is where a packet left a stack.
type hop struct {
	NIC     string
	NextHop netip.Addr
}

// recLink records where packets go and accepts them all.
type recLink struct {
	name string
	hops *[]hop
	pkts *[][]byte
}

func (l recLink) Send(nextHop netip.Addr, pkt []byte) error {
	*l.hops = append(*l.hops, hop{l.name, nextHop})
	if l.pkts != nil {
		*l.pkts = append(*l.pkts, pkt)
	}
	return nil
}

// routingStack is a stack with overlapping connected and static routes:
//
//	eth0 10.1.0.1/16     fd00:1::1/48
//	eth1 10.1.2.1/24     fd00:1:0:2::1/64   (inside eth0's subnets)
//	eth2 192.168.0.1/24  fd00:99::1/64
//	0.0.0.0/0    via 192.168.0.254   ::/0            via fd00:99::fe
//	10.2.0.0/16  via 10.1.2.200      fd00:2::/32     via fd00:1:0:2::200
//	10.2.3.0/24  via 10.1.0.7        fd00:2:3::/48   via fd00:1::7
//	10.2.3.4/32  via 192.168.0.9     fd00:2:3::4/128 via fd00:99::9
func routingStack(t *testing.T, forwarding, withDefault bool) (*stack.Stack, *[]hop) {
	t.Helper()
	return buildRoutingStack(t, forwarding, withDefault, false)
}

// buildRoutingStack builds routingStack's stack with AddInterface and
// AddRoute one by one, or with one Configure when batch.
func buildRoutingStack(t *testing.T, forwarding, withDefault, batch bool) (*stack.Stack, *[]hop) {
	t.Helper()
	s := stack.New(stack.Config{Name: "r", Clock: newFakeClock(), Forwarding: forwarding})
	hops := &[]hop{}
	var ifaces []stack.InterfaceConfig
	var routeCfgs []stack.RouteConfig
	for _, ifc := range []struct {
		name  string
		addrs []string
	}{
		{"eth0", []string{"10.1.0.1/16", "fd00:1::1/48"}},
		{"eth1", []string{"10.1.2.1/24", "fd00:1:0:2::1/64"}},
		{"eth2", []string{"192.168.0.1/24", "fd00:99::1/64"}},
	} {
		var ps []netip.Prefix
		for _, a := range ifc.addrs {
			ps = append(ps, netip.MustParsePrefix(a))
		}
		if batch {
			ifaces = append(ifaces, stack.InterfaceConfig{Name: ifc.name, MTU: 1500, Link: recLink{name: ifc.name, hops: hops}, Addrs: ps})
			continue
		}
		if _, err := s.AddInterface(ifc.name, 1500, recLink{name: ifc.name, hops: hops}, ps...); err != nil {
			t.Fatal(err)
		}
	}
	routes := [][2]string{
		{"10.2.0.0/16", "10.1.2.200"},
		{"10.2.3.0/24", "10.1.0.7"},
		{"10.2.3.4/32", "192.168.0.9"},
		{"fd00:2::/32", "fd00:1:0:2::200"},
		{"fd00:2:3::/48", "fd00:1::7"},
		{"fd00:2:3::4/128", "fd00:99::9"},
	}
	if withDefault {
		routes = append(routes, [2]string{"0.0.0.0/0", "192.168.0.254"}, [2]string{"::/0", "fd00:99::fe"})
	}
	for _, r := range routes {
		if batch {
			routeCfgs = append(routeCfgs, stack.RouteConfig{Dst: netip.MustParsePrefix(r[0]), Via: netip.MustParseAddr(r[1])})
			continue
		}
		if err := s.AddRoute(netip.MustParsePrefix(r[0]), netip.MustParseAddr(r[1])); err != nil {
			t.Fatalf("AddRoute(%s via %s): %v", r[0], r[1], err)
		}
	}
	if batch {
		if _, err := s.Configure(ifaces, routeCfgs); err != nil {
			t.Fatalf("Configure: %v", err)
		}
	}
	return s, hops
}

var routingCases = []struct {
	name    string
	dst     string
	wantNIC string
	wantHop string // the next hop; dst itself for a connected route
	wantSrc string // the source address a local sender gets
}{
	{"v4 connected /16", "10.1.5.5", "eth0", "10.1.5.5", "10.1.0.1"},
	{"v4 connected /24 beats connected /16", "10.1.2.5", "eth1", "10.1.2.5", "10.1.2.1"},
	{"v4 static /16", "10.2.9.9", "eth1", "10.1.2.200", "10.1.2.1"},
	{"v4 static /24 beats /16", "10.2.3.9", "eth0", "10.1.0.7", "10.1.0.1"},
	{"v4 static /32 beats /24", "10.2.3.4", "eth2", "192.168.0.9", "192.168.0.1"},
	{"v4 neighbour of the /32", "10.2.3.5", "eth0", "10.1.0.7", "10.1.0.1"},
	{"v4 connected /24 of eth2", "192.168.0.77", "eth2", "192.168.0.77", "192.168.0.1"},
	{"v4 default", "8.8.8.8", "eth2", "192.168.0.254", "192.168.0.1"},
	{"v4 default just outside /16", "10.3.0.1", "eth2", "192.168.0.254", "192.168.0.1"},
	{"v6 connected /48", "fd00:1:0:5::5", "eth0", "fd00:1:0:5::5", "fd00:1::1"},
	{"v6 connected /64 beats connected /48", "fd00:1:0:2::5", "eth1", "fd00:1:0:2::5", "fd00:1:0:2::1"},
	{"v6 static /32", "fd00:2:9::9", "eth1", "fd00:1:0:2::200", "fd00:1:0:2::1"},
	{"v6 static /48 beats /32", "fd00:2:3::9", "eth0", "fd00:1::7", "fd00:1::1"},
	{"v6 static /128 beats /48", "fd00:2:3::4", "eth2", "fd00:99::9", "fd00:99::1"},
	{"v6 default", "2001:db8::1", "eth2", "fd00:99::fe", "fd00:99::1"},
}

// TestRouteLookupLocal sends an echo request from the stack itself to each
// destination and checks the interface, next hop and source it chose.
func TestRouteLookupLocal(t *testing.T) {
	for _, tc := range routingCases {
		t.Run(tc.name, func(t *testing.T) {
			s, hops := routingStack(t, false, true)
			dst := netip.MustParseAddr(tc.dst)
			ep, err := s.OpenEcho(dst.Is6())
			if err != nil {
				t.Fatal(err)
			}
			defer ep.Close()
			src, err := ep.Send(dst, 1, 0, nil)
			if err != nil {
				t.Fatalf("Send(%v): %v", dst, err)
			}
			if want := netip.MustParseAddr(tc.wantSrc); src != want {
				t.Errorf("source %v, want %v", src, want)
			}
			want := []hop{{tc.wantNIC, netip.MustParseAddr(tc.wantHop)}}
			if diff := cmp.Diff(want, *hops, cmpOpts...); diff != "" {
				t.Errorf("hops (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRouteLookupForward gives a router packets for each destination and
// checks where it forwards them.
func TestRouteLookupForward(t *testing.T) {
	for _, tc := range routingCases {
		t.Run(tc.name, func(t *testing.T) {
			s, hops := routingStack(t, true, true)
			dst := netip.MustParseAddr(tc.dst)
			src := netip.MustParseAddr("192.168.0.50")
			if dst.Is6() {
				src = netip.MustParseAddr("fd00:99::50")
			}
			in := s.Interfaces()[2]
			s.Deliver(in, echoPacket(src, dst, 64, 7, 1, nil))
			want := []hop{{tc.wantNIC, netip.MustParseAddr(tc.wantHop)}}
			if diff := cmp.Diff(want, *hops, cmpOpts...); diff != "" {
				t.Errorf("hops (-want +got):\n%s", diff)
			}
			if got := s.Stats().Forwarded; got != 1 {
				t.Errorf("Stats().Forwarded = %d, want 1", got)
			}
		})
	}
}

func TestRouteNoDefault(t *testing.T) {
	for _, dst := range []string{"8.8.8.8", "10.3.0.1", "2001:db8::1", "fd00:3::1"} {
		t.Run(dst, func(t *testing.T) {
			s, hops := routingStack(t, false, false)
			a := netip.MustParseAddr(dst)
			ep, err := s.OpenEcho(a.Is6())
			if err != nil {
				t.Fatal(err)
			}
			defer ep.Close()
			if _, err := ep.Send(a, 1, 0, nil); !errors.Is(err, stack.ErrNoRoute) {
				t.Errorf("Send(%v) = %v, want ErrNoRoute", a, err)
			}
			if len(*hops) != 0 {
				t.Errorf("packets sent: %v", *hops)
			}
		})
	}
}

// routeView is a Route without the *NIC, for comparing.
type routeView struct {
	Dst netip.Prefix
	Via netip.Addr
	NIC string
}

func viewRoutes(rs []stack.Route) []routeView {
	var out []routeView
	for _, r := range rs {
		out = append(out, routeView{r.Dst, r.Via, r.NIC.Name()})
	}
	return out
}

func TestRoutesOrder(t *testing.T) {
	s, _ := routingStack(t, false, true)
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	want := []routeView{
		// Connected first, by interface then address, masked.
		{p("10.1.0.0/16"), netip.Addr{}, "eth0"},
		{p("fd00:1::/48"), netip.Addr{}, "eth0"},
		{p("10.1.2.0/24"), netip.Addr{}, "eth1"},
		{p("fd00:1:0:2::/64"), netip.Addr{}, "eth1"},
		{p("192.168.0.0/24"), netip.Addr{}, "eth2"},
		{p("fd00:99::/64"), netip.Addr{}, "eth2"},
		// Then static, in the order added.
		{p("10.2.0.0/16"), a("10.1.2.200"), "eth1"},
		{p("10.2.3.0/24"), a("10.1.0.7"), "eth0"},
		{p("10.2.3.4/32"), a("192.168.0.9"), "eth2"},
		{p("fd00:2::/32"), a("fd00:1:0:2::200"), "eth1"},
		{p("fd00:2:3::/48"), a("fd00:1::7"), "eth0"},
		{p("fd00:2:3::4/128"), a("fd00:99::9"), "eth2"},
		{p("0.0.0.0/0"), a("192.168.0.254"), "eth2"},
		{p("::/0"), a("fd00:99::fe"), "eth2"},
	}
	got := s.Routes()
	if diff := cmp.Diff(want, viewRoutes(got), cmpOpts...); diff != "" {
		t.Errorf("Routes() (-want +got):\n%s", diff)
	}
	for _, r := range got {
		if r.Connected() != !r.Via.IsValid() {
			t.Errorf("%v via %v: Connected() = %v", r.Dst, r.Via, r.Connected())
		}
	}

	// An interface added later puts its connected routes before the static
	// ones, and Routes returns a copy.
	if _, err := s.AddInterface("eth3", 1500, recLink{name: "eth3", hops: &[]hop{}}, p("172.16.0.1/12")); err != nil {
		t.Fatal(err)
	}
	got = s.Routes()
	if got[6].Dst != p("172.16.0.0/12") || got[6].NIC.Name() != "eth3" {
		t.Errorf("Routes()[6] = %v on %s, want 172.16.0.0/12 on eth3", got[6].Dst, got[6].NIC.Name())
	}
	got[0].Dst = p("1.2.3.0/24")
	if s.Routes()[0].Dst != p("10.1.0.0/16") {
		t.Error("Routes() returned the table itself, not a copy")
	}
}

func TestAddRouteMasksDestination(t *testing.T) {
	s, _ := routingStack(t, false, false)
	if err := s.AddRoute(netip.MustParsePrefix("10.9.9.9/16"), netip.MustParseAddr("10.1.0.7")); err != nil {
		t.Fatal(err)
	}
	rs := s.Routes()
	if got, want := rs[len(rs)-1].Dst, netip.MustParsePrefix("10.9.0.0/16"); got != want {
		t.Errorf("route stored as %v, want %v", got, want)
	}
}

func TestAddRouteErrors(t *testing.T) {
	tests := []struct {
		name, dst, via string
		wantErr        string
	}{
		{"via not on a connected network", "10.9.0.0/16", "172.16.0.1", "not on a connected network"},
		{"via reached only through a static route", "10.9.0.0/16", "10.2.9.9", "not on a connected network"},
		{"v6 via not on a connected network", "fd00:9::/32", "2001:db8::1", "not on a connected network"},
		{"via is own address", "10.9.0.0/16", "10.1.2.1", "own address"},
		{"via is own address on another interface", "10.9.0.0/16", "192.168.0.1", "own address"},
		{"v6 via is own address", "fd00:9::/32", "fd00:1::1", "own address"},
		{"v4 destination, v6 via", "10.9.0.0/16", "fd00:1::7", "families differ"},
		{"v6 destination, v4 via", "fd00:9::/32", "10.1.0.7", "families differ"},
		{"duplicate static", "10.2.0.0/16", "10.1.0.7", "exists"},
		{"duplicate static, unmasked", "10.2.77.1/16", "10.1.0.7", "exists"},
		{"duplicate /32", "10.2.3.4/32", "10.1.0.8", "exists"},
		{"duplicate default", "0.0.0.0/0", "10.1.0.8", "exists"},
		{"duplicate v6 default", "::/0", "fd00:1::8", "exists"},
		{"duplicate of a connected network", "10.1.2.0/24", "192.168.0.9", "exists"},
		{"duplicate of a v6 connected network", "fd00:99::/64", "fd00:1::7", "exists"},
		{"invalid destination", "", "10.1.0.7", "invalid"},
		{"invalid via", "10.9.0.0/16", "", "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := routingStack(t, false, true)
			before := s.Routes()
			var dst netip.Prefix
			var via netip.Addr
			if tc.dst != "" {
				dst = netip.MustParsePrefix(tc.dst)
			}
			if tc.via != "" {
				via = netip.MustParseAddr(tc.via)
			}
			err := s.AddRoute(dst, via)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("AddRoute(%v, %v) = %v, want an error containing %q", dst, via, err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "stack r:") {
				t.Errorf("error %q does not name the stack", err)
			}
			if diff := cmp.Diff(viewRoutes(before), viewRoutes(s.Routes()), cmpOpts...); diff != "" {
				t.Errorf("a failed AddRoute changed the table (-before +after):\n%s", diff)
			}
		})
	}
}

// TestAddRouteViaInsideStaticSubnet: a next hop is valid when it lies on a
// connected network, even if a longer static route also covers it (Linux
// accepts this too: fib_check_nh only looks at link-scope routes). The route
// must use the connected network's interface.
func TestAddRouteViaInsideStaticSubnet(t *testing.T) {
	s, hops := routingStack(t, false, false)
	// 10.1.9.0/24 lies inside eth0's connected 10.1.0.0/16 but is routed
	// elsewhere.
	if err := s.AddRoute(netip.MustParsePrefix("10.1.9.0/24"), netip.MustParseAddr("192.168.0.9")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRoute(netip.MustParsePrefix("10.50.0.0/16"), netip.MustParseAddr("10.1.9.9")); err != nil {
		t.Fatalf("AddRoute via a neighbour on eth0's subnet: %v", err)
	}
	ep, err := s.OpenEcho(false)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if _, err := ep.Send(netip.MustParseAddr("10.50.1.1"), 1, 0, nil); err != nil {
		t.Fatal(err)
	}
	want := []hop{{"eth0", netip.MustParseAddr("10.1.9.9")}}
	if diff := cmp.Diff(want, *hops, cmpOpts...); diff != "" {
		t.Errorf("hops (-want +got):\n%s", diff)
	}
}

// TestSameSubnetTwoInterfaces: when two interfaces are on the same subnet,
// the first one added carries the traffic.
func TestSameSubnetTwoInterfaces(t *testing.T) {
	s := stack.New(stack.Config{Clock: newFakeClock()})
	hops := &[]hop{}
	for _, ifc := range []struct{ name, addr string }{{"eth0", "10.0.0.1/24"}, {"eth1", "10.0.0.2/24"}} {
		if _, err := s.AddInterface(ifc.name, 1500, recLink{name: ifc.name, hops: hops}, netip.MustParsePrefix(ifc.addr)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SendIP(netip.Addr{}, netip.MustParseAddr("10.0.0.9"), wire.ProtoUDP, 0, nil); err != nil {
		t.Fatal(err)
	}
	want := []hop{{"eth0", netip.MustParseAddr("10.0.0.9")}}
	if diff := cmp.Diff(want, *hops, cmpOpts...); diff != "" {
		t.Errorf("hops (-want +got):\n%s", diff)
	}
}

func TestAddInterfaceErrors(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name    string
		ifname  string
		mtu     int
		addrs   []netip.Prefix
		wantErr string
	}{
		{"MTU below 68", "eth1", 67, []netip.Prefix{p("10.0.1.1/24")}, "below the IPv4 minimum"},
		{"IPv6 with MTU below 1280", "eth1", 1279, []netip.Prefix{p("fd00::1/64")}, "below the IPv6 minimum"},
		{"invalid address", "eth1", 1500, []netip.Prefix{{}}, "invalid address"},
		{"duplicate name", "eth0", 1500, []netip.Prefix{p("10.0.1.1/24")}, "exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := stack.New(stack.Config{Name: "h", Clock: newFakeClock()})
			if _, err := s.AddInterface("eth0", 1500, recLink{hops: &[]hop{}}, p("10.0.0.1/24")); err != nil {
				t.Fatal(err)
			}
			_, err := s.AddInterface(tc.ifname, tc.mtu, recLink{hops: &[]hop{}}, tc.addrs...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("AddInterface = %v, want an error containing %q", err, tc.wantErr)
			}
			if n := len(s.Interfaces()); n != 1 {
				t.Errorf("%d interfaces after a failed AddInterface, want 1", n)
			}
		})
	}

	t.Run("minimums accepted", func(t *testing.T) {
		s := stack.New(stack.Config{Clock: newFakeClock()})
		if _, err := s.AddInterface("eth0", 68, recLink{hops: &[]hop{}}, p("10.0.0.1/24")); err != nil {
			t.Error(err)
		}
		nic, err := s.AddInterface("eth1", 1280, recLink{hops: &[]hop{}}, p("fd00::1/64"), p("10.0.1.1/24"))
		if err != nil {
			t.Fatal(err)
		}
		if nic.Name() != "eth1" || nic.MTU() != 1280 {
			t.Errorf("NIC %s MTU %d", nic.Name(), nic.MTU())
		}
		if diff := cmp.Diff([]netip.Prefix{p("fd00::1/64"), p("10.0.1.1/24")}, nic.Addresses(), cmpOpts...); diff != "" {
			t.Errorf("Addresses() (-want +got):\n%s", diff)
		}
	})
}

func TestSourceAddr(t *testing.T) {
	s, hops := routingStack(t, false, true)
	for _, tc := range routingCases {
		got, err := s.SourceAddr(netip.MustParseAddr(tc.dst))
		if err != nil || got != netip.MustParseAddr(tc.wantSrc) {
			t.Errorf("SourceAddr(%s) = %v, %v; want %s", tc.dst, got, err, tc.wantSrc)
		}
	}
	// Its own address is reached from itself.
	for _, a := range []string{"10.1.2.1", "fd00:99::1"} {
		if got, err := s.SourceAddr(netip.MustParseAddr(a)); err != nil || got.String() != a {
			t.Errorf("SourceAddr(%s) = %v, %v", a, got, err)
		}
	}
	if len(*hops) != 0 {
		t.Errorf("SourceAddr sent packets: %v", *hops)
	}
	s, _ = routingStack(t, false, false)
	if _, err := s.SourceAddr(netip.MustParseAddr("8.8.8.8")); !errors.Is(err, stack.ErrNoRoute) {
		t.Errorf("SourceAddr without a route = %v, want ErrNoRoute", err)
	}
}

func TestNew(t *testing.T) {
	s := stack.New(stack.Config{Name: "r9", Clock: stack.SystemClock{}, Forwarding: true})
	if s.Name() != "r9" || !s.Forwarding() {
		t.Errorf("Name() = %q, Forwarding() = %v", s.Name(), s.Forwarding())
	}
	if len(s.Interfaces()) != 0 || len(s.Routes()) != 0 || s.Stats() != (stack.Stats{}) {
		t.Error("a new stack is not empty")
	}
	defer func() {
		if recover() == nil {
			t.Error("New without a Clock did not panic")
		}
	}()
	stack.New(stack.Config{})
}
