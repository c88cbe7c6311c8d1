package api_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func names(ids ...string) []*labv1.Host {
	var hs []*labv1.Host
	for _, id := range ids {
		hs = append(hs, &labv1.Host{Name: id})
	}
	return hs
}

func TestDeleteTopology(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	ctx := context.Background()

	// Part of the lab: h2 and lan9 (which never existed).
	resp, err := e.lab.DeleteTopology(ctx, &labv1.DeleteTopologyRequest{Topology: &labv1.Topology{
		Lab: "demo", Hosts: names("h2", "h9"), Networks: []*labv1.Network{{Name: "lan9"}},
	}})
	if err != nil {
		t.Fatalf("DeleteTopology: %v", err)
	}
	want := []*labv1.Change{
		{Name: "labs/demo/hosts/h2", Action: deleted},
		{Name: "labs/demo/hosts/h9", Action: notFound},
		{Name: "labs/demo/networks/lan9", Action: notFound},
	}
	if diff := cmp.Diff(want, resp.Changes, protocmp.Transform()); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	_, err = e.lab.GetHost(ctx, &labv1.GetHostRequest{Name: "labs/demo/hosts/h2"})
	wantCode(t, err, codes.NotFound)

	// lan2 is still used by r1, which the request does not delete.
	before := e.snapshot()
	_, err = e.lab.DeleteTopology(ctx, &labv1.DeleteTopologyRequest{Topology: &labv1.Topology{
		Lab: "demo", Hosts: names("h1"), Networks: []*labv1.Network{{Name: "lan1"}, {Name: "lan2"}},
	}})
	wantField(t, err, "topology.networks[0].name")
	e.unchanged(t, before)

	// validate_only reports and writes nothing.
	resp, err = e.lab.DeleteTopology(ctx, &labv1.DeleteTopologyRequest{Topology: demo(), ValidateOnly: true})
	if err != nil {
		t.Fatalf("DeleteTopology validate_only: %v", err)
	}
	if got := changes(resp.Changes)["labs/demo"]; got != deleted {
		t.Errorf("labs/demo: %v, want DELETED", got)
	}
	e.unchanged(t, before)

	// The whole file: hosts go first, so their networks can go; the lab
	// goes when empty.
	resp, err = e.lab.DeleteTopology(ctx, &labv1.DeleteTopologyRequest{Topology: demo()})
	if err != nil {
		t.Fatalf("DeleteTopology: %v", err)
	}
	want = []*labv1.Change{
		{Name: "labs/demo/hosts/r1", Action: deleted},
		{Name: "labs/demo/hosts/h1", Action: deleted},
		{Name: "labs/demo/hosts/h2", Action: notFound},
		{Name: "labs/demo/networks/lan1", Action: deleted},
		{Name: "labs/demo/networks/lan2", Action: deleted},
		{Name: "labs/demo", Action: deleted},
	}
	if diff := cmp.Diff(want, resp.Changes, protocmp.Transform()); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if recs := e.store.List("labs/"); len(recs) != 0 {
		t.Errorf("records left: %v", recs)
	}
	_, err = e.lab.GetLab(ctx, &labv1.GetLabRequest{Name: "labs/demo"})
	wantCode(t, err, codes.NotFound)
}

func TestDeleteTopologyKeepsLabWithOtherResources(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	resp, err := e.lab.DeleteTopology(context.Background(), &labv1.DeleteTopologyRequest{Topology: &labv1.Topology{
		Lab: "demo", Hosts: names("h2"),
	}})
	if err != nil {
		t.Fatalf("DeleteTopology: %v", err)
	}
	if _, ok := changes(resp.Changes)["labs/demo"]; ok {
		t.Errorf("the lab was deleted with hosts left: %v", resp.Changes)
	}
	if _, err := e.lab.GetLab(context.Background(), &labv1.GetLabRequest{Name: "labs/demo"}); err != nil {
		t.Errorf("GetLab: %v", err)
	}
}

func TestDeleteTopologyBadName(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	before := e.snapshot()
	_, err := e.lab.DeleteTopology(context.Background(), &labv1.DeleteTopologyRequest{Topology: &labv1.Topology{
		Lab: "demo", Hosts: names("h1", "H2"),
	}})
	wantField(t, err, "topology.hosts[1].name")
	e.unchanged(t, before)
	_, err = e.lab.DeleteTopology(context.Background(), &labv1.DeleteTopologyRequest{Topology: &labv1.Topology{Lab: "De-mo"}})
	wantField(t, err, "topology.lab")
}
