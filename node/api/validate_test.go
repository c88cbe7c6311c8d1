package api_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func addHost(t *labv1.Topology, h *labv1.Host)       { t.Hosts = append(t.Hosts, h) }
func addNetwork(t *labv1.Topology, n *labv1.Network) { t.Networks = append(t.Networks, n) }

// on1 is a host h3 on lan1 with the given IPv4 address.
func on1(ipv4 string) *labv1.Host {
	return &labv1.Host{Name: "h3", Interfaces: []*labv1.Interface{{Network: "lan1", Ipv4: ipv4}}}
}

// TestApplyRejects applies a broken variant of the demo lab on top of the
// valid one: each must be InvalidArgument naming the field, and change
// nothing at all.
func TestApplyRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		topo  func() *labv1.Topology // nil: demo() edited by edit
		edit  func(*labv1.Topology)
		field string
	}{
		{name: "cidr prefix length 33", edit: func(t *labv1.Topology) { t.Networks[0].Ipv4 = "10.0.1.0/33" }, field: "topology.networks[0].ipv4"},
		{name: "cidr banana", edit: func(t *labv1.Topology) { t.Networks[1].Ipv4 = "banana" }, field: "topology.networks[1].ipv4"},
		{name: "ipv4 required", edit: func(t *labv1.Topology) { t.Networks[1].Ipv4 = "" }, field: "topology.networks[1].ipv4"},
		{name: "cidr not a network address", edit: func(t *labv1.Topology) { t.Networks[0].Ipv4 = "10.0.1.5/24" }, field: "topology.networks[0].ipv4"},
		{name: "ipv6 not a prefix address", edit: func(t *labv1.Topology) { t.Networks[0].Ipv6 = "fd00:0:0:1::5/64" }, field: "topology.networks[0].ipv6"},
		{name: "ipv6 prefix in ipv4", edit: func(t *labv1.Topology) { t.Networks[0].Ipv4 = "fd00:0:0:9::/64" }, field: "topology.networks[0].ipv4"},
		{name: "ipv4 prefix in ipv6", edit: func(t *labv1.Topology) { t.Networks[0].Ipv6 = "10.0.9.0/24" }, field: "topology.networks[0].ipv6"},
		{name: "overlapping networks in the request", edit: func(t *labv1.Topology) {
			addNetwork(t, &labv1.Network{Name: "lan3", Ipv4: "10.0.0.0/16"})
		}, field: "topology.networks[2].ipv4"},
		{name: "overlapping ipv6 prefixes", edit: func(t *labv1.Topology) {
			addNetwork(t, &labv1.Network{Name: "lan3", Ipv4: "10.0.3.0/24", Ipv6: "fd00:0:0:2::/63"})
		}, field: "topology.networks[2].ipv6"},
		{name: "overlapping an existing network not in the request", topo: func() *labv1.Topology {
			return &labv1.Topology{Lab: "demo", Networks: []*labv1.Network{{Name: "lan0", Ipv4: "10.0.1.128/25"}}}
		}, field: "topology.networks[0].ipv4"},
		{name: "mtu too small", edit: func(t *labv1.Topology) { t.Networks[0].Mtu = 100 }, field: "topology.networks[0].mtu"},
		{name: "mtu too large", edit: func(t *labv1.Topology) { t.Networks[1].Mtu = 70000 }, field: "topology.networks[1].mtu"},
		{name: "mtu below ipv6 minimum", edit: func(t *labv1.Topology) { t.Networks[1].Mtu = 1000 }, field: "topology.networks[1].mtu"},
		{name: "duplicate network", edit: func(t *labv1.Topology) {
			addNetwork(t, &labv1.Network{Name: "lan1", Ipv4: "10.0.3.0/24"})
		}, field: "topology.networks[2].name"},
		{name: "duplicate network by full name", edit: func(t *labv1.Topology) {
			addNetwork(t, &labv1.Network{Name: "labs/demo/networks/lan2", Ipv4: "10.0.3.0/24"})
		}, field: "topology.networks[2].name"},
		{name: "network uppercase", edit: func(t *labv1.Topology) { t.Networks[1].Name = "Lan2" }, field: "topology.networks[1].name"},
		{name: "network of another lab", edit: func(t *labv1.Topology) { t.Networks[1].Name = "labs/other/networks/lan2" }, field: "topology.networks[1].name"},
		{name: "lab underscore", edit: func(t *labv1.Topology) { t.Lab = "my_lab" }, field: "topology.lab"},
		{name: "host uppercase", edit: func(t *labv1.Topology) { t.Hosts[1].Name = "H1" }, field: "topology.hosts[1].name"},
		{name: "host underscore", edit: func(t *labv1.Topology) { t.Hosts[2].Name = "h_2" }, field: "topology.hosts[2].name"},
		{name: "host empty name", edit: func(t *labv1.Topology) { t.Hosts[2].Name = "" }, field: "topology.hosts[2].name"},
		{name: "host trailing hyphen", edit: func(t *labv1.Topology) { t.Hosts[2].Name = "h2-" }, field: "topology.hosts[2].name"},
		{name: "duplicate host", edit: func(t *labv1.Topology) { addHost(t, on1("")); t.Hosts[3].Name = "h1" }, field: "topology.hosts[3].name"},
		{name: "bad interface name", edit: func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Name = "Eth0" }, field: "topology.hosts[1].interfaces[0].name"},
		{name: "interface name too long", edit: func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Name = "averylonginterfacename" }, field: "topology.hosts[1].interfaces[0].name"},
		{name: "duplicate interface name", edit: func(t *labv1.Topology) {
			t.Hosts[0].Interfaces[1].Name = "eth0"
		}, field: "topology.hosts[0].interfaces[1].name"},
		{name: "unknown network", edit: func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Network = "lan9" }, field: "topology.hosts[1].interfaces[0].network"},
		{name: "interface without network", edit: func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Network = "" }, field: "topology.hosts[1].interfaces[0].network"},
		{name: "address outside its network", edit: func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Ipv4 = "10.0.2.5/24" }, field: "topology.hosts[1].interfaces[0].ipv4"},
		{name: "bare address outside its network", edit: func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Ipv4 = "10.0.2.5" }, field: "topology.hosts[1].interfaces[0].ipv4"},
		{name: "ipv6 address outside its network", edit: func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Ipv6 = "fd00:0:0:2::5/64" }, field: "topology.hosts[1].interfaces[0].ipv6"},
		{name: "prefix length mismatch", edit: func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Ipv4 = "10.0.1.5/25" }, field: "topology.hosts[1].interfaces[0].ipv4"},
		{name: "ipv6 prefix length mismatch", edit: func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Ipv6 = "fd00:0:0:1::5/48" }, field: "topology.hosts[1].interfaces[0].ipv6"},
		{name: "network address", edit: func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Ipv4 = "10.0.1.0/24" }, field: "topology.hosts[1].interfaces[0].ipv4"},
		{name: "broadcast address", edit: func(t *labv1.Topology) { t.Hosts[2].Interfaces[0].Ipv4 = "10.0.2.255" }, field: "topology.hosts[2].interfaces[0].ipv4"},
		{name: "subnet-router anycast address", edit: func(t *labv1.Topology) { t.Hosts[2].Interfaces[0].Ipv6 = "fd00:0:0:2::/64" }, field: "topology.hosts[2].interfaces[0].ipv6"},
		{name: "ipv6 address in ipv4", edit: func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Ipv4 = "fd00:0:0:1::5/64" }, field: "topology.hosts[1].interfaces[0].ipv4"},
		{name: "not an address", edit: func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Ipv4 = "10.0.1.x" }, field: "topology.hosts[1].interfaces[0].ipv4"},
		{name: "duplicate address in the request", edit: func(t *labv1.Topology) {
			t.Hosts[1].Interfaces[0].Ipv4 = "10.0.1.9/24"
			addHost(t, on1("10.0.1.9/24"))
		}, field: "topology.hosts[3].interfaces[0].ipv4"},
		{name: "duplicate ipv6 address in the request", edit: func(t *labv1.Topology) {
			t.Hosts[1].Interfaces[0].Ipv6 = "fd00:0:0:1::9"
			h := on1("")
			h.Interfaces[0].Ipv6 = "fd00:0:0:1::9/64"
			addHost(t, h)
		}, field: "topology.hosts[3].interfaces[0].ipv6"},
		{name: "address of an existing host", topo: func() *labv1.Topology {
			// h1 got 10.0.1.2 from the first apply.
			return &labv1.Topology{Lab: "demo", Hosts: []*labv1.Host{on1("10.0.1.2")}}
		}, field: "topology.hosts[0].interfaces[0].ipv4"},
		{name: "address of an existing router", topo: func() *labv1.Topology {
			return &labv1.Topology{Lab: "demo", Hosts: []*labv1.Host{on1("10.0.1.1/24")}}
		}, field: "topology.hosts[0].interfaces[0].ipv4"},
		{name: "address of an existing router named in the request", edit: func(t *labv1.Topology) {
			addHost(t, on1("10.0.1.1"))
		}, field: "topology.hosts[3].interfaces[0].ipv4"},
		{name: "interface ipv6 on a network without ipv6", edit: func(t *labv1.Topology) {
			addNetwork(t, &labv1.Network{Name: "lan3", Ipv4: "10.0.3.0/24"})
			addHost(t, &labv1.Host{Name: "h3", Interfaces: []*labv1.Interface{{Network: "lan3", Ipv6: "fd00:0:0:3::5/64"}}})
		}, field: "topology.hosts[3].interfaces[0].ipv6"},
		{name: "bad node name", edit: func(t *labv1.Topology) { t.Hosts[1].Node = "no/such node" }, field: "topology.hosts[1].node"},
		{name: "route via required", edit: func(t *labv1.Topology) { t.Hosts[1].Routes[0].Via = "" }, field: "topology.hosts[1].routes[0].via"},
		{name: "route via not an address", edit: func(t *labv1.Topology) { t.Hosts[1].Routes[0].Via = "r1" }, field: "topology.hosts[1].routes[0].via"},
		{name: "route to required", edit: func(t *labv1.Topology) { t.Hosts[1].Routes[0].To = "" }, field: "topology.hosts[1].routes[0].to"},
		{name: "route to not a prefix", edit: func(t *labv1.Topology) { t.Hosts[1].Routes[0].To = "everywhere" }, field: "topology.hosts[1].routes[0].to"},
		{name: "route to with host bits", edit: func(t *labv1.Topology) { t.Hosts[1].Routes[0].To = "10.0.2.1/24" }, field: "topology.hosts[1].routes[0].to"},
		{name: "route via on no attached network", edit: func(t *labv1.Topology) { t.Hosts[1].Routes[0].Via = "10.0.2.1" }, field: "topology.hosts[1].routes[0].via"},
		{name: "route via own address", edit: func(t *labv1.Topology) {
			t.Hosts[0].Routes = []*labv1.Route{{To: "10.0.9.0/24", Via: "10.0.1.1"}}
		}, field: "topology.hosts[0].routes[0].via"},
		{name: "route via own assigned address", edit: func(t *labv1.Topology) {
			t.Hosts[1].Routes = []*labv1.Route{{To: "10.0.9.0/24", Via: "10.0.1.2"}}
		}, field: "topology.hosts[1].routes[0].via"},
		{name: "route family mismatch", edit: func(t *labv1.Topology) {
			t.Hosts[1].Routes = append(t.Hosts[1].Routes, &labv1.Route{To: "10.0.9.0/24", Via: "fd00:0:0:1::1"})
		}, field: "topology.hosts[1].routes[2].via"},
		{name: "route family mismatch ipv6 to", edit: func(t *labv1.Topology) {
			t.Hosts[2].Routes = append(t.Hosts[2].Routes, &labv1.Route{To: "fd00:0:0:9::/64", Via: "10.0.2.1"})
		}, field: "topology.hosts[2].routes[2].via"},
		{name: "duplicate route", edit: func(t *labv1.Topology) {
			t.Hosts[1].Routes = append(t.Hosts[1].Routes, &labv1.Route{To: "0.0.0.0/0", Via: "10.0.1.1"})
		}, field: "topology.hosts[1].routes[2].to"},
		{name: "one bad host among good ones", edit: func(t *labv1.Topology) {
			// Good changes and a good new host...
			t.Networks[1].Mtu = 1400
			t.Hosts[2].Forwarding = true
			addHost(t, &labv1.Host{Name: "h4", Interfaces: []*labv1.Interface{{Network: "lan2"}}})
			// ... and one bad host: nothing at all is written.
			addHost(t, on1("10.0.2.3"))
		}, field: "topology.hosts[4].interfaces[0].ipv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, false)
			e.apply(t, demo())
			before := e.snapshot()
			topo := demo()
			if tc.topo != nil {
				topo = tc.topo()
			} else {
				tc.edit(topo)
			}
			for _, validateOnly := range []bool{true, false} {
				_, err := e.lab.Apply(context.Background(), &labv1.ApplyRequest{Topology: topo, ValidateOnly: validateOnly})
				wantField(t, err, tc.field)
				e.unchanged(t, before)
			}
		})
	}
}

func TestApplyRequiresTopology(t *testing.T) {
	e := newEnv(t, false)
	_, err := e.lab.Apply(context.Background(), &labv1.ApplyRequest{})
	wantField(t, err, "topology")
	_, err = e.lab.DeleteTopology(context.Background(), &labv1.DeleteTopologyRequest{})
	wantField(t, err, "topology")
}

// TestApplyReportsEveryViolation checks that one request with several
// mistakes names all of them.
func TestApplyReportsEveryViolation(t *testing.T) {
	e := newEnv(t, false)
	topo := demo()
	topo.Networks[0].Ipv4 = "banana"
	topo.Hosts[2].Interfaces[0].Ipv4 = "10.0.1.5"
	topo.Hosts[2].Routes[1].Via = "fd00:0:0:9::1"
	_, err := e.lab.Apply(context.Background(), &labv1.ApplyRequest{Topology: topo})
	wantField(t, err, "topology.networks[0].ipv4")
	st := wantCode(t, err, codes.InvalidArgument)
	if !strings.Contains(st.Message(), "more)") {
		t.Errorf("message %q does not say how many more fields are bad", st.Message())
	}
	got := map[string]bool{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				got[v.Field] = true
			}
		}
	}
	for _, f := range []string{"topology.networks[0].ipv4", "topology.hosts[2].interfaces[0].ipv4", "topology.hosts[2].routes[1].via"} {
		if !got[f] {
			t.Errorf("no violation of %s among %v", f, got)
		}
	}
	if n := len(e.store.List("")); n != 0 {
		t.Errorf("%d records written, want 0", n)
	}
}
