package api_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// walk lists every page of size one and returns the names in order.
func walk(t *testing.T, list func(token string) ([]string, string, error)) []string {
	t.Helper()
	var all []string
	token := ""
	for range 100 {
		page, next, err := list(token)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(page) > 1 {
			t.Fatalf("page of %d items, want at most 1", len(page))
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		token = next
	}
	t.Fatalf("pagination does not end")
	return nil
}

func TestListPagination(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	for _, lab := range []string{"b", "a"} {
		topo := demo()
		topo.Lab = lab
		e.apply(t, topo)
	}

	labs := walk(t, func(token string) ([]string, string, error) {
		r, err := e.lab.ListLabs(ctx, &labv1.ListLabsRequest{PageSize: 1, PageToken: token})
		var ns []string
		for _, l := range r.GetLabs() {
			ns = append(ns, l.Name)
		}
		return ns, r.GetNextPageToken(), err
	})
	if diff := cmp.Diff([]string{"labs/a", "labs/b"}, labs); diff != "" {
		t.Errorf("labs (-want +got):\n%s", diff)
	}

	hosts := func(parent string) []string {
		return walk(t, func(token string) ([]string, string, error) {
			r, err := e.lab.ListHosts(ctx, &labv1.ListHostsRequest{Parent: parent, PageSize: 1, PageToken: token})
			var ns []string
			for _, h := range r.GetHosts() {
				ns = append(ns, h.Name)
			}
			return ns, r.GetNextPageToken(), err
		})
	}
	if diff := cmp.Diff([]string{"labs/a/hosts/h1", "labs/a/hosts/h2", "labs/a/hosts/r1"}, hosts("labs/a")); diff != "" {
		t.Errorf("hosts of labs/a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{
		"labs/a/hosts/h1", "labs/a/hosts/h2", "labs/a/hosts/r1",
		"labs/b/hosts/h1", "labs/b/hosts/h2", "labs/b/hosts/r1",
	}, hosts("labs/-")); diff != "" {
		t.Errorf("hosts of labs/- (-want +got):\n%s", diff)
	}

	nets := walk(t, func(token string) ([]string, string, error) {
		r, err := e.lab.ListNetworks(ctx, &labv1.ListNetworksRequest{Parent: "labs/-", PageSize: 1, PageToken: token})
		var ns []string
		for _, n := range r.GetNetworks() {
			ns = append(ns, n.Name)
		}
		return ns, r.GetNextPageToken(), err
	})
	if diff := cmp.Diff([]string{
		"labs/a/networks/lan1", "labs/a/networks/lan2", "labs/b/networks/lan1", "labs/b/networks/lan2",
	}, nets); diff != "" {
		t.Errorf("networks of labs/- (-want +got):\n%s", diff)
	}

	// One page with the default size holds everything.
	r, err := e.lab.ListNetworks(ctx, &labv1.ListNetworksRequest{Parent: "labs/b"})
	if err != nil {
		t.Fatalf("ListNetworks: %v", err)
	}
	if len(r.Networks) != 2 || r.NextPageToken != "" {
		t.Errorf("ListNetworks labs/b = %d networks, token %q", len(r.Networks), r.NextPageToken)
	}

	// A token stays valid when the item it names is deleted.
	r1, err := e.lab.ListHosts(ctx, &labv1.ListHostsRequest{Parent: "labs/a", PageSize: 1})
	if err != nil {
		t.Fatalf("ListHosts: %v", err)
	}
	if _, err := e.lab.DeleteHost(ctx, &labv1.DeleteHostRequest{Name: "labs/a/hosts/h1"}); err != nil {
		t.Fatalf("DeleteHost: %v", err)
	}
	r2, err := e.lab.ListHosts(ctx, &labv1.ListHostsRequest{Parent: "labs/a", PageSize: 1, PageToken: r1.NextPageToken})
	if err != nil {
		t.Fatalf("ListHosts: %v", err)
	}
	if len(r2.Hosts) != 1 || r2.Hosts[0].Name != "labs/a/hosts/h2" {
		t.Errorf("page after deleted h1 = %v, want h2", r2.Hosts)
	}

	_, err = e.lab.ListHosts(ctx, &labv1.ListHostsRequest{Parent: "labs/a", PageToken: "!!!"})
	wantField(t, err, "page_token")
	_, err = e.lab.ListHosts(ctx, &labv1.ListHostsRequest{Parent: "labs/a", PageSize: -1})
	wantField(t, err, "page_size")
	_, err = e.lab.ListHosts(ctx, &labv1.ListHostsRequest{Parent: "a"})
	wantField(t, err, "parent")
	_, err = e.lab.ListNetworks(ctx, &labv1.ListNetworksRequest{Parent: "labs/A"})
	wantField(t, err, "parent")
}

func TestGet(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	ctx := context.Background()

	n, err := e.lab.GetNetwork(ctx, &labv1.GetNetworkRequest{Name: "labs/demo/networks/lan1"})
	if err != nil {
		t.Fatalf("GetNetwork: %v", err)
	}
	if n.Network.Ipv4 != "10.0.1.0/24" || n.Network.Ipv6 != "fd00:0:0:1::/64" {
		t.Errorf("lan1 = %v", n.Network)
	}
	for _, tc := range []struct {
		name string
		call func() error
		code codes.Code
	}{
		{"lab not found", func() error {
			_, err := e.lab.GetLab(ctx, &labv1.GetLabRequest{Name: "labs/nope"})
			return err
		}, codes.NotFound},
		{"lab bad name", func() error {
			_, err := e.lab.GetLab(ctx, &labv1.GetLabRequest{Name: "demo"})
			return err
		}, codes.InvalidArgument},
		{"network not found", func() error {
			_, err := e.lab.GetNetwork(ctx, &labv1.GetNetworkRequest{Name: "labs/demo/networks/lan9"})
			return err
		}, codes.NotFound},
		{"network bad name", func() error {
			_, err := e.lab.GetNetwork(ctx, &labv1.GetNetworkRequest{Name: "labs/demo/hosts/h1"})
			return err
		}, codes.InvalidArgument},
		{"host not found", func() error {
			_, err := e.lab.GetHost(ctx, &labv1.GetHostRequest{Name: "labs/demo/hosts/h9"})
			return err
		}, codes.NotFound},
		{"host bad name", func() error {
			_, err := e.lab.GetHost(ctx, &labv1.GetHostRequest{Name: "labs/demo/hosts/H1"})
			return err
		}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), tc.code) })
	}

	node, err := e.nodes.GetNode(ctx, &labv1.GetNodeRequest{Name: "nodes/n1"})
	if err != nil || node.Node.Name != "nodes/n1" {
		t.Errorf("GetNode = %v, %v", node, err)
	}
	_, err = e.nodes.GetNode(ctx, &labv1.GetNodeRequest{Name: "nodes/n2"})
	wantCode(t, err, codes.NotFound)
	nodes, err := e.nodes.ListNodes(ctx, &labv1.ListNodesRequest{})
	if err != nil || len(nodes.Nodes) != 1 {
		t.Errorf("ListNodes = %v, %v", nodes, err)
	}
}

func TestCreate(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()

	_, err := e.lab.CreateNetwork(ctx, &labv1.CreateNetworkRequest{Parent: "labs/demo", NetworkId: "lan1", Network: &labv1.Network{Ipv4: "10.0.1.0/24"}})
	wantCode(t, err, codes.NotFound)
	_, err = e.lab.CreateHost(ctx, &labv1.CreateHostRequest{Parent: "labs/demo", HostId: "h1", Host: &labv1.Host{}})
	wantCode(t, err, codes.NotFound)

	lab, err := e.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "demo", Lab: &labv1.Lab{Description: "d"}})
	if err != nil {
		t.Fatalf("CreateLab: %v", err)
	}
	if lab.Lab.Name != "labs/demo" || lab.Lab.Description != "d" || lab.Lab.CreateTime == nil {
		t.Errorf("CreateLab = %v", lab.Lab)
	}
	_, err = e.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "demo"})
	wantCode(t, err, codes.AlreadyExists)
	_, err = e.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "Demo"})
	wantField(t, err, "lab_id")

	net, err := e.lab.CreateNetwork(ctx, &labv1.CreateNetworkRequest{Parent: "labs/demo", NetworkId: "lan1", Network: &labv1.Network{
		Name: "ignored", Ipv4: "10.0.1.0/24", Ipv6: "fd00:0:0:1::/64", Vni: 7,
	}})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	if net.Network.Name != "labs/demo/networks/lan1" || net.Network.Vni == 0 {
		t.Errorf("CreateNetwork = %v", net.Network)
	}
	_, err = e.lab.CreateNetwork(ctx, &labv1.CreateNetworkRequest{Parent: "labs/demo", NetworkId: "lan1", Network: &labv1.Network{Ipv4: "10.0.9.0/24"}})
	wantCode(t, err, codes.AlreadyExists)
	before := e.snapshot()
	_, err = e.lab.CreateNetwork(ctx, &labv1.CreateNetworkRequest{Parent: "labs/demo", NetworkId: "lan0", Network: &labv1.Network{Ipv4: "10.0.0.0/16"}})
	wantField(t, err, "network.ipv4")
	_, err = e.lab.CreateNetwork(ctx, &labv1.CreateNetworkRequest{Parent: "labs/demo", NetworkId: "lan2", Network: &labv1.Network{Ipv4: "10.0.2.1/24"}})
	wantField(t, err, "network.ipv4")
	_, err = e.lab.CreateNetwork(ctx, &labv1.CreateNetworkRequest{Parent: "labs/demo", NetworkId: "lan2"})
	wantField(t, err, "network")
	_, err = e.lab.CreateNetwork(ctx, &labv1.CreateNetworkRequest{Parent: "labs/demo", NetworkId: "lan_2", Network: &labv1.Network{Ipv4: "10.0.2.0/24"}})
	wantField(t, err, "network_id")
	_, err = e.lab.CreateNetwork(ctx, &labv1.CreateNetworkRequest{Parent: "demo", NetworkId: "lan2", Network: &labv1.Network{Ipv4: "10.0.2.0/24"}})
	wantField(t, err, "parent")
	e.unchanged(t, before)

	host, err := e.lab.CreateHost(ctx, &labv1.CreateHostRequest{Parent: "labs/demo", HostId: "h1", Host: &labv1.Host{
		Interfaces: []*labv1.Interface{{Network: "lan1"}},
	}})
	if err != nil {
		t.Fatalf("CreateHost: %v", err)
	}
	want := &labv1.Host{Name: "labs/demo/hosts/h1", Node: testNode, HomeNode: testNode, Interfaces: []*labv1.Interface{
		{Name: "eth0", Network: "lan1", Ipv4: "10.0.1.1/24", Ipv6: "fd00:0:0:1::1/64"},
	}}
	if diff := cmp.Diff(want, host.Host, protocmp.Transform()); diff != "" {
		t.Errorf("CreateHost (-want +got):\n%s", diff)
	}
	_, err = e.lab.CreateHost(ctx, &labv1.CreateHostRequest{Parent: "labs/demo", HostId: "h1", Host: &labv1.Host{}})
	wantCode(t, err, codes.AlreadyExists)
	before = e.snapshot()
	_, err = e.lab.CreateHost(ctx, &labv1.CreateHostRequest{Parent: "labs/demo", HostId: "h2", Host: &labv1.Host{
		Interfaces: []*labv1.Interface{{Network: "lan1", Ipv4: "10.0.1.1"}},
	}})
	wantField(t, err, "host.interfaces[0].ipv4")
	_, err = e.lab.CreateHost(ctx, &labv1.CreateHostRequest{Parent: "labs/demo", HostId: "h2", Host: &labv1.Host{
		Interfaces: []*labv1.Interface{{Network: "lan1"}}, Routes: []*labv1.Route{{To: "default", Via: "10.0.9.1"}},
	}})
	wantField(t, err, "host.routes[0].via")
	_, err = e.lab.CreateHost(ctx, &labv1.CreateHostRequest{Parent: "labs/demo", HostId: "h2"})
	wantField(t, err, "host")
	e.unchanged(t, before)

	l, err := e.lab.GetLab(ctx, &labv1.GetLabRequest{Name: "labs/demo"})
	if err != nil {
		t.Fatalf("GetLab: %v", err)
	}
	if l.Lab.NetworkCount != 1 || l.Lab.HostCount != 1 {
		t.Errorf("lab counts = %d networks, %d hosts; want 1, 1", l.Lab.NetworkCount, l.Lab.HostCount)
	}
}

func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

func TestUpdate(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	ctx := context.Background()

	// Lab.
	l, err := e.lab.UpdateLab(ctx, &labv1.UpdateLabRequest{Lab: &labv1.Lab{Name: "labs/demo", Description: "new"}, UpdateMask: mask("description")})
	if err != nil || l.Lab.Description != "new" || l.Lab.HostCount != 3 {
		t.Errorf("UpdateLab = %v, %v", l, err)
	}
	before := e.snapshot()
	_, err = e.lab.UpdateLab(ctx, &labv1.UpdateLabRequest{Lab: &labv1.Lab{Name: "labs/demo"}, UpdateMask: mask("create_time")})
	wantField(t, err, "update_mask")
	_, err = e.lab.UpdateLab(ctx, &labv1.UpdateLabRequest{Lab: &labv1.Lab{Name: "labs/nope"}})
	wantCode(t, err, codes.NotFound)
	e.unchanged(t, before)

	// Network: only the masked field changes.
	n, err := e.lab.UpdateNetwork(ctx, &labv1.UpdateNetworkRequest{
		Network:    &labv1.Network{Name: "labs/demo/networks/lan2", Mtu: 1400, Ipv4: "ignored"},
		UpdateMask: mask("mtu"),
	})
	if err != nil {
		t.Fatalf("UpdateNetwork: %v", err)
	}
	if n.Network.Mtu != 1400 || n.Network.Ipv4 != "10.0.2.0/24" || n.Network.Vni == 0 {
		t.Errorf("UpdateNetwork = %v", n.Network)
	}
	before = e.snapshot()
	for _, tc := range []struct {
		name  string
		req   *labv1.UpdateNetworkRequest
		field string
	}{
		{"bad mask", &labv1.UpdateNetworkRequest{Network: &labv1.Network{Name: "labs/demo/networks/lan2"}, UpdateMask: mask("vni")}, "update_mask"},
		{"mask of unknown field", &labv1.UpdateNetworkRequest{Network: &labv1.Network{Name: "labs/demo/networks/lan2"}, UpdateMask: mask("mtu", "banana")}, "update_mask"},
		{"bad value", &labv1.UpdateNetworkRequest{Network: &labv1.Network{Name: "labs/demo/networks/lan2", Mtu: 10}, UpdateMask: mask("mtu")}, "network.mtu"},
		{"bad name", &labv1.UpdateNetworkRequest{Network: &labv1.Network{Name: "lan2"}}, "network.name"},
		{"renumber under its hosts", &labv1.UpdateNetworkRequest{Network: &labv1.Network{Name: "labs/demo/networks/lan2", Ipv4: "10.0.3.0/24"}, UpdateMask: mask("ipv4")}, "labs/demo/hosts/h2.interfaces[0].ipv4"},
		// An empty mask replaces every writable field: no ipv4 is an error.
		{"empty mask", &labv1.UpdateNetworkRequest{Network: &labv1.Network{Name: "labs/demo/networks/lan2", Mtu: 1400}}, "network.ipv4"},
	} {
		t.Run("network "+tc.name, func(t *testing.T) {
			_, err := e.lab.UpdateNetwork(ctx, tc.req)
			wantField(t, err, tc.field)
			e.unchanged(t, before)
		})
	}
	_, err = e.lab.UpdateNetwork(ctx, &labv1.UpdateNetworkRequest{Network: &labv1.Network{Name: "labs/demo/networks/lan9"}, UpdateMask: mask("mtu")})
	wantCode(t, err, codes.NotFound)

	// Host: a new route, and nothing else.
	h, err := e.lab.UpdateHost(ctx, &labv1.UpdateHostRequest{
		Host: &labv1.Host{Name: "labs/demo/hosts/h1", Forwarding: true, Routes: []*labv1.Route{
			{To: "default", Via: "10.0.1.1"}, {To: "10.0.2.0/24", Via: "10.0.1.1"},
		}},
		UpdateMask: mask("routes"),
	})
	if err != nil {
		t.Fatalf("UpdateHost: %v", err)
	}
	if len(h.Host.Routes) != 2 || h.Host.Forwarding || h.Host.Interfaces[0].Ipv4 != "10.0.1.2/24" || h.Host.Node != testNode {
		t.Errorf("UpdateHost = %v", h.Host)
	}
	// Interfaces replaced on the same network keep their addresses.
	h, err = e.lab.UpdateHost(ctx, &labv1.UpdateHostRequest{
		Host:       &labv1.Host{Name: "labs/demo/hosts/h1", Interfaces: []*labv1.Interface{{Network: "lan1"}, {Network: "lan2"}}},
		UpdateMask: mask("interfaces"),
	})
	if err != nil {
		t.Fatalf("UpdateHost: %v", err)
	}
	wantIfcs := []*labv1.Interface{
		{Name: "eth0", Network: "lan1", Ipv4: "10.0.1.2/24", Ipv6: "fd00:0:0:1::2/64"},
		{Name: "eth1", Network: "lan2", Ipv4: "10.0.2.3/24", Ipv6: "fd00:0:0:2::3/64"},
	}
	if diff := cmp.Diff(wantIfcs, h.Host.Interfaces, protocmp.Transform()); diff != "" {
		t.Errorf("interfaces (-want +got):\n%s", diff)
	}
	before = e.snapshot()
	_, err = e.lab.UpdateHost(ctx, &labv1.UpdateHostRequest{Host: &labv1.Host{Name: "labs/demo/hosts/h1"}, UpdateMask: mask("name")})
	wantField(t, err, "update_mask")
	_, err = e.lab.UpdateHost(ctx, &labv1.UpdateHostRequest{
		Host:       &labv1.Host{Name: "labs/demo/hosts/h1", Routes: []*labv1.Route{{To: "default", Via: "10.0.7.1"}}},
		UpdateMask: mask("routes"),
	})
	wantField(t, err, "host.routes[0].via")
	_, err = e.lab.UpdateHost(ctx, &labv1.UpdateHostRequest{Host: &labv1.Host{Name: "labs/demo/hosts/h9"}, UpdateMask: mask("routes")})
	wantCode(t, err, codes.NotFound)
	e.unchanged(t, before)
}

func TestDelete(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	for _, lab := range []string{"demo", "other"} {
		topo := demo()
		topo.Lab = lab
		e.apply(t, topo)
	}

	before := e.snapshot()
	_, err := e.lab.DeleteNetwork(ctx, &labv1.DeleteNetworkRequest{Name: "labs/demo/networks/lan1"})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = e.lab.DeleteNetwork(ctx, &labv1.DeleteNetworkRequest{Name: "labs/demo/networks/lan9"})
	wantCode(t, err, codes.NotFound)
	_, err = e.lab.DeleteHost(ctx, &labv1.DeleteHostRequest{Name: "labs/demo/hosts/h9"})
	wantCode(t, err, codes.NotFound)
	_, err = e.lab.DeleteLab(ctx, &labv1.DeleteLabRequest{Name: "labs/nope"})
	wantCode(t, err, codes.NotFound)
	_, err = e.lab.DeleteHost(ctx, &labv1.DeleteHostRequest{Name: "h1"})
	wantField(t, err, "name")
	e.unchanged(t, before)

	for _, h := range []string{"h1", "r1"} {
		if _, err := e.lab.DeleteHost(ctx, &labv1.DeleteHostRequest{Name: "labs/demo/hosts/" + h}); err != nil {
			t.Fatalf("DeleteHost %s: %v", h, err)
		}
	}
	if _, err := e.lab.DeleteNetwork(ctx, &labv1.DeleteNetworkRequest{Name: "labs/demo/networks/lan1"}); err != nil {
		t.Fatalf("DeleteNetwork: %v", err)
	}
	_, err = e.lab.DeleteHost(ctx, &labv1.DeleteHostRequest{Name: "labs/demo/hosts/h1"})
	wantCode(t, err, codes.NotFound)

	// DeleteLab takes what is left of demo, and nothing of other.
	if _, err := e.lab.DeleteLab(ctx, &labv1.DeleteLabRequest{Name: "labs/demo"}); err != nil {
		t.Fatalf("DeleteLab: %v", err)
	}
	if recs := e.store.List("labs/demo"); len(recs) != 0 {
		var keys []string
		for _, r := range recs {
			keys = append(keys, r.Key)
		}
		t.Errorf("records left in demo: %v", keys)
	}
	if got := len(e.store.List("labs/other")); got != 6 {
		t.Errorf("%d records in other, want 6", got)
	}
	_, err = e.lab.DeleteLab(ctx, &labv1.DeleteLabRequest{Name: "labs/demo"})
	wantCode(t, err, codes.NotFound)

	// A new lab of the same name starts empty.
	if _, err := e.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "demo"}); err != nil {
		t.Fatalf("CreateLab: %v", err)
	}
	l, err := e.lab.GetLab(ctx, &labv1.GetLabRequest{Name: "labs/demo"})
	if err != nil || l.Lab.HostCount != 0 || l.Lab.NetworkCount != 0 {
		t.Errorf("recreated lab = %v, %v", l, err)
	}
}

// TestLabPrefixIsolation checks that a lab whose id is a prefix of another
// ("demo", "demo2") is not mixed up with it.
func TestLabPrefixIsolation(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	for _, lab := range []string{"demo", "demo2"} {
		topo := demo()
		topo.Lab = lab
		e.apply(t, topo)
	}
	l, err := e.lab.GetLab(ctx, &labv1.GetLabRequest{Name: "labs/demo"})
	if err != nil {
		t.Fatalf("GetLab: %v", err)
	}
	if l.Lab.HostCount != 3 || l.Lab.NetworkCount != 2 {
		t.Errorf("labs/demo counts %d hosts, %d networks; want 3, 2", l.Lab.HostCount, l.Lab.NetworkCount)
	}
	r, err := e.lab.ListHosts(ctx, &labv1.ListHostsRequest{Parent: "labs/demo"})
	if err != nil {
		t.Fatalf("ListHosts: %v", err)
	}
	if len(r.Hosts) != 3 {
		t.Errorf("%d hosts in labs/demo, want 3", len(r.Hosts))
	}
	if _, err := e.lab.DeleteLab(ctx, &labv1.DeleteLabRequest{Name: "labs/demo"}); err != nil {
		t.Fatalf("DeleteLab: %v", err)
	}
	if got := len(e.store.List("labs/demo2/")); got != 5 {
		t.Errorf("%d records under labs/demo2/ after deleting labs/demo, want 5", got)
	}
	if _, err := e.lab.GetLab(ctx, &labv1.GetLabRequest{Name: "labs/demo2"}); err != nil {
		t.Errorf("GetLab demo2 after deleting demo: %v", err)
	}
}
