package stack_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/stack"
)

// TestConfigureSameAsOneByOne builds routingStack's stack with one
// Configure and checks it has the same interfaces, the same table and
// sends every routing case the same way as the stack built with
// AddInterface and AddRoute one by one; the table is built once.
func TestConfigureSameAsOneByOne(t *testing.T) {
	one, _ := buildRoutingStack(t, false, true, false)
	batch, _ := buildRoutingStack(t, false, true, true)
	if diff := cmp.Diff(viewRoutes(one.Routes()), viewRoutes(batch.Routes()), cmpOpts...); diff != "" {
		t.Errorf("Routes() (-one by one +Configure):\n%s", diff)
	}
	var names []string
	for _, n := range batch.Interfaces() {
		names = append(names, n.Name())
	}
	if got := strings.Join(names, " "); got != "eth0 eth1 eth2" {
		t.Errorf("Interfaces() = %s, want eth0 eth1 eth2", got)
	}
	if got := batch.RouteGeneration(); got != 1 {
		t.Errorf("RouteGeneration() after one Configure = %d, want 1", got)
	}
	for _, tc := range routingCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, batched := range []bool{false, true} {
				s, hops := buildRoutingStack(t, false, true, batched)
				dst := netip.MustParseAddr(tc.dst)
				ep, err := s.OpenEcho(dst.Is6())
				if err != nil {
					t.Fatal(err)
				}
				src, err := ep.Send(dst, 1, 0, nil)
				ep.Close()
				if err != nil {
					t.Fatalf("batch %v: Send(%v): %v", batched, dst, err)
				}
				if want := netip.MustParseAddr(tc.wantSrc); src != want {
					t.Errorf("batch %v: source %v, want %v", batched, src, want)
				}
				want := []hop{{tc.wantNIC, netip.MustParseAddr(tc.wantHop)}}
				if diff := cmp.Diff(want, *hops, cmpOpts...); diff != "" {
					t.Errorf("batch %v: hops (-want +got):\n%s", batched, diff)
				}
			}
		})
	}
}

// TestConfigureAllOrNothing checks that a Configure that fails returns
// the error AddInterface or AddRoute gives and leaves the stack as it was.
func TestConfigureAllOrNothing(t *testing.T) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	link := recLink{name: "x", hops: &[]hop{}}
	tests := []struct {
		name    string
		ifaces  []stack.InterfaceConfig
		routes  []stack.RouteConfig
		wantErr string
	}{
		{"duplicate interface", []stack.InterfaceConfig{
			{Name: "eth1", MTU: 1500, Link: link, Addrs: []netip.Prefix{p("10.1.0.1/24")}},
			{Name: "eth1", MTU: 1500, Link: link, Addrs: []netip.Prefix{p("10.2.0.1/24")}},
		}, nil, "interface eth1 exists"},
		{"interface clashes with an existing one", []stack.InterfaceConfig{
			{Name: "eth0", MTU: 1500, Link: link},
		}, nil, "interface eth0 exists"},
		{"MTU too small", []stack.InterfaceConfig{
			{Name: "eth1", MTU: 60, Link: link},
		}, nil, "below the IPv4 minimum"},
		{"next hop not connected", []stack.InterfaceConfig{
			{Name: "eth1", MTU: 1500, Link: link, Addrs: []netip.Prefix{p("10.1.0.1/24")}},
		}, []stack.RouteConfig{{p("0.0.0.0/0"), a("10.9.0.1")}}, "not on a connected network"},
		{"next hop is own address", []stack.InterfaceConfig{
			{Name: "eth1", MTU: 1500, Link: link, Addrs: []netip.Prefix{p("10.1.0.1/24")}},
		}, []stack.RouteConfig{{p("0.0.0.0/0"), a("10.1.0.1")}}, "own address"},
		{"route twice", []stack.InterfaceConfig{
			{Name: "eth1", MTU: 1500, Link: link, Addrs: []netip.Prefix{p("10.1.0.1/24")}},
		}, []stack.RouteConfig{{p("0.0.0.0/0"), a("10.1.0.9")}, {p("0.0.0.0/0"), a("10.1.0.8")}}, "exists"},
		{"route to a connected subnet", []stack.InterfaceConfig{
			{Name: "eth1", MTU: 1500, Link: link, Addrs: []netip.Prefix{p("10.1.0.1/24")}},
		}, []stack.RouteConfig{{p("192.168.0.0/24"), a("10.1.0.9")}}, "exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := stack.New(stack.Config{Name: "h", Clock: newFakeClock()})
			if _, err := s.AddInterface("eth0", 1500, link, p("192.168.0.1/24")); err != nil {
				t.Fatal(err)
			}
			before, gen := viewRoutes(s.Routes()), s.RouteGeneration()
			nics, err := s.Configure(tc.ifaces, tc.routes)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Configure = %v, want an error with %q", err, tc.wantErr)
			}
			if nics != nil {
				t.Errorf("Configure returned interfaces %v with its error", nics)
			}
			if diff := cmp.Diff(before, viewRoutes(s.Routes()), cmpOpts...); diff != "" || s.RouteGeneration() != gen {
				t.Errorf("table changed by a failed Configure (-before +after):\n%s", diff)
			}
			if n := len(s.Interfaces()); n != 1 {
				t.Errorf("%d interfaces after a failed Configure, want 1", n)
			}
			// The stack still takes what the failed call named.
			if _, err := s.AddInterface("eth1", 1500, link, p("10.1.0.1/24")); err != nil {
				t.Errorf("AddInterface after a failed Configure: %v", err)
			}
		})
	}
}

// TestManyRoutes checks longest-prefix match in a table too big to scan
// (more than a handful of routes and local addresses per family).
func TestManyRoutes(t *testing.T) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	hops := &[]hop{}
	var ifaces []stack.InterfaceConfig
	for i := range 12 {
		ifaces = append(ifaces, stack.InterfaceConfig{
			Name: fmt.Sprintf("eth%d", i), MTU: 1500,
			Link:  recLink{name: fmt.Sprintf("eth%d", i), hops: hops},
			Addrs: []netip.Prefix{p(fmt.Sprintf("10.%d.0.1/16", i))},
		})
	}
	var routes []stack.RouteConfig
	for i := range 20 {
		routes = append(routes, stack.RouteConfig{p(fmt.Sprintf("11.%d.0.0/16", i)), a(fmt.Sprintf("10.%d.0.9", i%12))})
	}
	routes = append(routes, stack.RouteConfig{p("11.5.5.0/24"), a("10.7.0.7")}, stack.RouteConfig{p("0.0.0.0/0"), a("10.0.0.254")})
	s := stack.New(stack.Config{Name: "r", Clock: newFakeClock()})
	if _, err := s.Configure(ifaces, routes); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dst, nic, hop string }{
		{"11.7.1.1", "eth7", "10.7.0.9"},
		{"11.15.1.1", "eth3", "10.3.0.9"},
		{"11.5.5.5", "eth7", "10.7.0.7"},
		{"11.5.6.6", "eth5", "10.5.0.9"},
		{"10.11.3.3", "eth11", "10.11.3.3"},
		{"12.0.0.1", "eth0", "10.0.0.254"},
	} {
		*hops = nil
		ep, err := s.OpenEcho(false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ep.Send(a(tc.dst), 1, 0, nil)
		ep.Close()
		if err != nil {
			t.Fatalf("Send(%s): %v", tc.dst, err)
		}
		if diff := cmp.Diff([]hop{{tc.nic, a(tc.hop)}}, *hops, cmpOpts...); diff != "" {
			t.Errorf("to %s: hops (-want +got):\n%s", tc.dst, diff)
		}
	}
	// Every one of the 12 local addresses is this host's: the echo
	// request loops back and never reaches a link.
	*hops = nil
	for i := range 12 {
		ep, err := s.OpenEcho(false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ep.Send(a(fmt.Sprintf("10.%d.0.1", i)), 1, 0, nil); err != nil {
			t.Errorf("Send to own 10.%d.0.1: %v", i, err)
		}
		ep.Close()
	}
	if len(*hops) != 0 {
		t.Errorf("packets to own addresses left on links: %v", *hops)
	}
}
