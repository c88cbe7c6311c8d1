package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

const (
	created    = labv1.ChangeAction_CHANGE_ACTION_CREATED
	configured = labv1.ChangeAction_CHANGE_ACTION_CONFIGURED
	unchanged  = labv1.ChangeAction_CHANGE_ACTION_UNCHANGED
	deleted    = labv1.ChangeAction_CHANGE_ACTION_DELETED
	notFound   = labv1.ChangeAction_CHANGE_ACTION_NOT_FOUND
)

func TestApplyCreates(t *testing.T) {
	e := newEnv(t, false)
	resp := e.apply(t, demo())
	want := []*labv1.Change{
		{Name: "labs/demo", Action: created},
		{Name: "labs/demo/networks/lan1", Action: created},
		{Name: "labs/demo/networks/lan2", Action: created},
		{Name: "labs/demo/hosts/r1", Action: created},
		{Name: "labs/demo/hosts/h1", Action: created},
		{Name: "labs/demo/hosts/h2", Action: created},
	}
	if diff := cmp.Diff(want, resp.Changes, protocmp.Transform()); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}

	wantHosts := map[string]*labv1.Host{
		"r1": {Name: "labs/demo/hosts/r1", Forwarding: true, Node: testNode, HomeNode: testNode, Interfaces: []*labv1.Interface{
			{Name: "eth0", Network: "lan1", Ipv4: "10.0.1.1/24", Ipv6: "fd00:0:0:1::1/64"},
			{Name: "eth1", Network: "lan2", Ipv4: "10.0.2.1/24", Ipv6: "fd00:0:0:2::1/64"},
		}},
		"h1": {Name: "labs/demo/hosts/h1", Node: testNode, HomeNode: testNode, Interfaces: []*labv1.Interface{
			{Name: "eth0", Network: "lan1", Ipv4: "10.0.1.2/24", Ipv6: "fd00:0:0:1::2/64"},
		}, Routes: []*labv1.Route{{To: "default", Via: "10.0.1.1"}, {To: "default", Via: "fd00:0:0:1::1"}}},
		"h2": {Name: "labs/demo/hosts/h2", Node: testNode, HomeNode: testNode, Interfaces: []*labv1.Interface{
			{Name: "eth0", Network: "lan2", Ipv4: "10.0.2.2/24", Ipv6: "fd00:0:0:2::2/64"},
		}, Routes: []*labv1.Route{{To: "default", Via: "10.0.2.1"}, {To: "default", Via: "fd00:0:0:2::1"}}},
	}
	for id, want := range wantHosts {
		got := e.host(t, "labs/demo/hosts/"+id)
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("host %s (-want +got):\n%s", id, diff)
		}
	}

	vnis := map[uint32]bool{}
	for _, id := range []string{"lan1", "lan2"} {
		n, err := e.lab.GetNetwork(context.Background(), &labv1.GetNetworkRequest{Name: "labs/demo/networks/" + id})
		if err != nil {
			t.Fatalf("GetNetwork: %v", err)
		}
		if n.Network.Vni == 0 || n.Network.Vni >= 1<<24 {
			t.Errorf("network %s: VNI %d, want a nonzero 24-bit value", id, n.Network.Vni)
		}
		if vnis[n.Network.Vni] {
			t.Errorf("network %s: VNI %d used twice", id, n.Network.Vni)
		}
		vnis[n.Network.Vni] = true
	}

	lab, err := e.lab.GetLab(context.Background(), &labv1.GetLabRequest{Name: "labs/demo"})
	if err != nil {
		t.Fatalf("GetLab: %v", err)
	}
	if lab.Lab.Description != "two LANs and a router" || lab.Lab.NetworkCount != 2 || lab.Lab.HostCount != 3 || lab.Lab.CreateTime == nil {
		t.Errorf("lab = %v", lab.Lab)
	}
}

func TestApplyTwiceChangesNothing(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	before := e.snapshot()
	resp := e.apply(t, demo())
	if len(resp.Changes) != 6 {
		t.Fatalf("%d changes, want 6: %v", len(resp.Changes), resp.Changes)
	}
	for _, c := range resp.Changes {
		if c.Action != unchanged {
			t.Errorf("%s: %v, want UNCHANGED", c.Name, c.Action)
		}
	}
	e.unchanged(t, before)

	// Full resource names in the topology mean the same thing.
	topo := demo()
	topo.Networks[0].Name = "labs/demo/networks/lan1"
	topo.Hosts[1].Name = "labs/demo/hosts/h1"
	resp = e.apply(t, topo)
	for _, c := range resp.Changes {
		if c.Action != unchanged {
			t.Errorf("%s: %v, want UNCHANGED", c.Name, c.Action)
		}
	}
	e.unchanged(t, before)
}

func TestApplyConfiguresOnlyWhatChanged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*labv1.Topology)
		change string
	}{
		{"network mtu", func(t *labv1.Topology) { t.Networks[1].Mtu = 1400 }, "labs/demo/networks/lan2"},
		{"host route", func(t *labv1.Topology) {
			t.Hosts[2].Routes = append(t.Hosts[2].Routes, &labv1.Route{To: "10.0.1.0/24", Via: "10.0.2.1"})
		}, "labs/demo/hosts/h2"},
		{"router forwarding", func(t *labv1.Topology) { t.Hosts[0].Forwarding = false }, "labs/demo/hosts/r1"},
		{"explicit address", func(t *labv1.Topology) { t.Hosts[1].Interfaces[0].Ipv4 = "10.0.1.7" }, "labs/demo/hosts/h1"},
		{"lab description", func(t *labv1.Topology) { t.Description = "changed" }, "labs/demo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, false)
			e.apply(t, demo())
			rev := e.store.Revision()
			topo := demo()
			tc.edit(topo)
			resp := e.apply(t, topo)
			for _, c := range resp.Changes {
				want := unchanged
				if c.Name == tc.change {
					want = configured
				}
				if c.Action != want {
					t.Errorf("%s: %v, want %v", c.Name, c.Action, want)
				}
			}
			if got := e.store.Revision(); got != rev+1 {
				t.Errorf("revision %d, want %d (one write)", got, rev+1)
			}
		})
	}
}

func TestApplyBareAddressTakesNetworkPrefix(t *testing.T) {
	e := newEnv(t, false)
	topo := demo()
	topo.Hosts[1].Interfaces[0].Ipv4 = "10.0.1.7"
	topo.Hosts[1].Interfaces[0].Ipv6 = "fd00:0:0:1::7"
	e.apply(t, topo)
	ifc := e.host(t, "labs/demo/hosts/h1").Interfaces[0]
	if ifc.Ipv4 != "10.0.1.7/24" || ifc.Ipv6 != "fd00:0:0:1::7/64" {
		t.Errorf("h1 eth0 = %s, %s; want 10.0.1.7/24, fd00:0:0:1::7/64", ifc.Ipv4, ifc.Ipv6)
	}
	// Applying the same bare form again is no change.
	before := e.snapshot()
	for _, c := range e.apply(t, topo).Changes {
		if c.Action != unchanged {
			t.Errorf("%s: %v, want UNCHANGED", c.Name, c.Action)
		}
	}
	e.unchanged(t, before)
}

func TestApplyAssignsAroundExplicitAddresses(t *testing.T) {
	e := newEnv(t, false)
	topo := demo()
	// h3 asks for .2 explicitly: h1, assigned in the same write, skips it
	// (and r1's .1).
	topo.Hosts = append(topo.Hosts, &labv1.Host{Name: "h3", Interfaces: []*labv1.Interface{{Network: "lan1", Ipv4: "10.0.1.2/24"}}})
	e.apply(t, topo)
	if got := e.host(t, "labs/demo/hosts/h1").Interfaces[0]; got.Ipv4 != "10.0.1.3/24" || got.Ipv6 != "fd00:0:0:1::3/64" {
		t.Errorf("h1 eth0 = %s, %s; want 10.0.1.3/24, fd00:0:0:1::3/64", got.Ipv4, got.Ipv6)
	}
	// h3 gave no IPv6: it gets one with its IPv4 host number.
	if got := e.host(t, "labs/demo/hosts/h3").Interfaces[0]; got.Ipv6 != "fd00:0:0:1::2/64" {
		t.Errorf("h3 eth0 IPv6 = %s, want fd00:0:0:1::2/64", got.Ipv6)
	}
	// A host added later gets the lowest free address; the others keep theirs.
	e.apply(t, &labv1.Topology{Lab: "demo", Hosts: []*labv1.Host{{Name: "h4", Interfaces: []*labv1.Interface{{Network: "lan1"}}}}})
	if got := e.host(t, "labs/demo/hosts/h4").Interfaces[0]; got.Ipv4 != "10.0.1.4/24" {
		t.Errorf("h4 eth0 = %s, want 10.0.1.4/24", got.Ipv4)
	}
	if got := e.host(t, "labs/demo/hosts/h1").Interfaces[0]; got.Ipv4 != "10.0.1.3/24" {
		t.Errorf("h1 eth0 = %s after adding h4, want 10.0.1.3/24", got.Ipv4)
	}
}

func TestApplyValidateOnly(t *testing.T) {
	e := newEnv(t, false)
	before := e.snapshot()
	resp, err := e.lab.Apply(context.Background(), &labv1.ApplyRequest{Topology: demo(), ValidateOnly: true})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(resp.Changes) != 6 {
		t.Errorf("%d changes, want 6", len(resp.Changes))
	}
	for _, c := range resp.Changes {
		if c.Action != created {
			t.Errorf("%s: %v, want CREATED", c.Name, c.Action)
		}
	}
	e.unchanged(t, before)
	if n := len(e.store.List("")); n != 0 {
		t.Errorf("%d records after validate_only, want 0", n)
	}

	e.apply(t, demo())
	topo := demo()
	topo.Networks[0].Mtu = 9000
	before = e.snapshot()
	resp, err = e.lab.Apply(context.Background(), &labv1.ApplyRequest{Topology: topo, ValidateOnly: true})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := changes(resp.Changes)["labs/demo/networks/lan1"]; got != configured {
		t.Errorf("lan1: %v, want CONFIGURED", got)
	}
	e.unchanged(t, before)
}

func TestApplyDefaultLab(t *testing.T) {
	e := newEnv(t, false)
	topo := demo()
	topo.Lab = ""
	resp := e.apply(t, topo)
	if resp.Changes[0].Name != "labs/default" {
		t.Errorf("first change %s, want labs/default", resp.Changes[0].Name)
	}
	e.host(t, "labs/default/hosts/h1")
}

// TestApplyKeepsVNIs checks that VNIs are unique across labs and stable.
func TestApplyKeepsVNIs(t *testing.T) {
	e := newEnv(t, false)
	seen := map[uint32]string{}
	for i := range 5 {
		topo := demo()
		topo.Lab = fmt.Sprintf("lab%d", i)
		e.apply(t, topo)
	}
	resp, err := e.lab.ListNetworks(context.Background(), &labv1.ListNetworksRequest{Parent: "labs/-"})
	if err != nil {
		t.Fatalf("ListNetworks: %v", err)
	}
	if len(resp.Networks) != 10 {
		t.Fatalf("%d networks, want 10", len(resp.Networks))
	}
	for _, n := range resp.Networks {
		if other, dup := seen[n.Vni]; dup {
			t.Errorf("VNI %d of %s is also %s's", n.Vni, n.Name, other)
		}
		seen[n.Vni] = n.Name
	}
	old := proto.Clone(resp.Networks[0]).(*labv1.Network)
	topo := demo()
	topo.Lab = "lab0"
	topo.Networks[0].Mtu = 1400
	e.apply(t, topo)
	n, err := e.lab.GetNetwork(context.Background(), &labv1.GetNetworkRequest{Name: old.Name})
	if err != nil {
		t.Fatalf("GetNetwork: %v", err)
	}
	if n.Network.Vni != old.Vni {
		t.Errorf("VNI changed from %d to %d on update", old.Vni, n.Network.Vni)
	}
}

// A running host is never re-addressed behind its back: a new host that
// claims an address already given to another is rejected, even when the
// whole file is applied again and the other host's address was assigned.
func TestApplyKeepsAssignedAddressAgainstLaterClaim(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	if got := e.host(t, "labs/demo/hosts/h1").Interfaces[0].Ipv4; got != "10.0.1.2/24" {
		t.Fatalf("h1 = %s, want 10.0.1.2/24", got)
	}
	before := e.snapshot()
	topo := demo()
	topo.Hosts = append(topo.Hosts, &labv1.Host{Name: "h3", Interfaces: []*labv1.Interface{{Network: "lan1", Ipv4: "10.0.1.2/24"}}})
	_, err := e.lab.Apply(context.Background(), &labv1.ApplyRequest{Topology: topo})
	wantField(t, err, "topology.hosts[3].interfaces[0].ipv4")
	if !strings.Contains(err.Error(), "already used by h1") {
		t.Errorf("error %v should name h1", err)
	}
	e.unchanged(t, before)
}
