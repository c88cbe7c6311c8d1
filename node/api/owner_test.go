package api_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// addUsers creates the users of the principals, as an admin.
func (e *env) addUsers(t *testing.T, ps ...*auth.Principal) {
	t.Helper()
	for _, p := range ps {
		_, err := e.users.CreateUser(as(t.Context(), admin), &labv1.CreateUserRequest{UserId: p.User, User: &labv1.User{Role: roleOf(p.Role)}})
		if err != nil {
			t.Fatalf("CreateUser %s: %v", p.User, err)
		}
	}
}

func roleOf(r auth.Role) labv1.Role {
	return map[auth.Role]labv1.Role{auth.Admin: labv1.Role_ROLE_ADMIN, auth.Student: labv1.Role_ROLE_STUDENT, auth.Viewer: labv1.Role_ROLE_VIEWER}[r]
}

func (e *env) getLab(t *testing.T, id string) *labv1.Lab {
	t.Helper()
	resp, err := e.lab.GetLab(t.Context(), &labv1.GetLabRequest{Name: "labs/" + id})
	if err != nil {
		t.Fatalf("GetLab %s: %v", id, err)
	}
	return resp.Lab
}

func wantOwner(t *testing.T, l *labv1.Lab, owner string, shared bool) {
	t.Helper()
	if l.GetOwner() != owner || l.GetShared() != shared {
		t.Errorf("lab %s: owner %q shared %v, want %q %v", l.GetName(), l.GetOwner(), l.GetShared(), owner, shared)
	}
}

// TestLabOwnership: a lab is its creator's (CreateLab or Apply); updates
// and re-applies, by the owner or an admin, keep the owner; shared is as
// the last apply or update says; Get, List and Watch show both.
func TestLabOwnership(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	resp, err := e.lab.CreateLab(as(ctx, alice), &labv1.CreateLabRequest{LabId: "a1", Lab: &labv1.Lab{Owner: "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	wantOwner(t, resp.Lab, "alice", false) // the owner asked for is ignored
	wantOwner(t, e.getLab(t, "a1"), "alice", false)

	topo := demo()
	topo.Shared = true
	if _, err := e.lab.Apply(as(ctx, bob), &labv1.ApplyRequest{Topology: topo}); err != nil {
		t.Fatal(err)
	}
	wantOwner(t, e.getLab(t, "demo"), "bob", true)
	// Re-applied by its owner without shared: still bob's, not shared.
	topo.Shared = false
	topo.Description = "changed"
	if _, err := e.lab.Apply(as(ctx, bob), &labv1.ApplyRequest{Topology: topo}); err != nil {
		t.Fatal(err)
	}
	wantOwner(t, e.getLab(t, "demo"), "bob", false)
	// By an admin: still bob's.
	topo.Shared = true
	if _, err := e.lab.Apply(as(ctx, admin), &labv1.ApplyRequest{Topology: topo}); err != nil {
		t.Fatal(err)
	}
	wantOwner(t, e.getLab(t, "demo"), "bob", true)
	// Other writes keep it too.
	if _, err := e.lab.UpdateLab(as(ctx, bob), &labv1.UpdateLabRequest{Lab: &labv1.Lab{Name: "labs/demo", Description: "d", Shared: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lab.DeleteHost(as(ctx, bob), &labv1.DeleteHostRequest{Name: "labs/demo/hosts/h2"}); err != nil {
		t.Fatal(err)
	}
	wantOwner(t, e.getLab(t, "demo"), "bob", true)

	// Without a principal (no interceptor): no owner.
	if _, err := e.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "anon", Lab: &labv1.Lab{Shared: true}}); err != nil {
		t.Fatal(err)
	}
	wantOwner(t, e.getLab(t, "anon"), "", true)

	list, err := e.lab.ListLabs(ctx, &labv1.ListLabsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range list.Labs {
		got[l.Name] = l.Owner
		if l.Name == "labs/demo" && !l.Shared {
			t.Error("ListLabs: demo not shared")
		}
	}
	if got["labs/a1"] != "alice" || got["labs/demo"] != "bob" || got["labs/anon"] != "" || len(got) != 3 {
		t.Errorf("ListLabs owners: %v", got)
	}

	stream := e.watch(t, &labv1.WatchRequest{Parent: "labs/demo", Kinds: []string{"labs"}})
	ev := recvN(t, stream, 1)[0]
	wantOwner(t, ev.GetLab(), "bob", true)
}

// TestLabTransfer: UpdateLab with owner in the mask hands a lab to
// another user, who must exist; shared is updated by its mask path; an
// empty mask never changes the owner.
func TestLabTransfer(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	e.addUsers(t, alice, bob)
	e.apply(t, demo())
	upd := func(l *labv1.Lab, paths ...string) (*labv1.Lab, error) {
		l.Name = "labs/demo"
		var m *fieldmaskpb.FieldMask
		if paths != nil {
			m = &fieldmaskpb.FieldMask{Paths: paths}
		}
		resp, err := e.lab.UpdateLab(as(ctx, admin), &labv1.UpdateLabRequest{Lab: l, UpdateMask: m})
		return resp.GetLab(), err
	}
	l, err := upd(&labv1.Lab{Owner: "alice"}, "owner")
	if err != nil {
		t.Fatal(err)
	}
	wantOwner(t, l, "alice", false)
	wantOwner(t, e.getLab(t, "demo"), "alice", false)
	if l.Description != demo().Description {
		t.Errorf("transfer changed the description to %q", l.Description)
	}

	for _, owner := range []string{"nobody", "", "users/bob", "Bob"} {
		_, err = upd(&labv1.Lab{Owner: owner}, "owner")
		wantField(t, err, "lab.owner")
	}
	before := e.snapshot()
	_, err = upd(&labv1.Lab{Owner: "bob"}, "owner", "owners")
	wantField(t, err, "update_mask")
	e.unchanged(t, before)

	l, err = upd(&labv1.Lab{Shared: true, Owner: "bob"}, "shared")
	if err != nil {
		t.Fatal(err)
	}
	wantOwner(t, l, "alice", true)
	// An empty mask replaces description and shared, never the owner.
	l, err = upd(&labv1.Lab{Description: "new", Owner: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	wantOwner(t, l, "alice", false)
	if l.Description != "new" {
		t.Errorf("description %q after an empty mask", l.Description)
	}
	l, err = upd(&labv1.Lab{Owner: "bob", Shared: true}, "owner", "shared")
	if err != nil {
		t.Fatal(err)
	}
	wantOwner(t, l, "bob", true)
}

// TestTakeoverGuard: a write re-checks in its transaction that the lab
// is the caller's. The interceptor let alice apply labs/demo because it
// did not exist when it checked; bob created it since: alice's apply must
// not take it over, nor change it.
func TestTakeoverGuard(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	if _, err := e.lab.Apply(as(ctx, bob), &labv1.ApplyRequest{Topology: demo()}); err != nil {
		t.Fatal(err)
	}
	before := e.snapshot()
	denied := func(what string, err error, owner string) {
		t.Helper()
		st := wantCode(t, err, codes.PermissionDenied)
		if !strings.Contains(st.Message(), "demo") || !strings.Contains(st.Message(), owner) {
			t.Errorf("%s: %q does not name the lab and its owner %s", what, st.Message(), owner)
		}
	}
	topo := demo()
	topo.Description = "alice's now"
	_, err := e.lab.Apply(as(ctx, alice), &labv1.ApplyRequest{Topology: topo})
	denied("apply", err, "bob")
	_, err = e.lab.Apply(as(ctx, alice), &labv1.ApplyRequest{Topology: topo, ValidateOnly: true})
	denied("apply validate_only", err, "bob")
	_, err = e.lab.DeleteTopology(as(ctx, alice), &labv1.DeleteTopologyRequest{Topology: demo()})
	denied("delete topology", err, "bob")
	_, err = e.lab.CreateHost(as(ctx, alice), &labv1.CreateHostRequest{Parent: "labs/demo", HostId: "h9", Host: &labv1.Host{}})
	denied("create host", err, "bob")
	_, err = e.lab.SetImpairment(as(ctx, alice), &labv1.SetImpairmentRequest{Host: "labs/demo/hosts/h1", Interface: "eth0", Impair: &labv1.Impairment{}})
	denied("impair", err, "bob")
	_, err = e.lab.DeleteLab(as(ctx, alice), &labv1.DeleteLabRequest{Name: "labs/demo"})
	denied("delete lab", err, "bob")
	// A node acting for itself changes no lab.
	_, err = e.lab.Apply(as(ctx, &auth.Principal{Node: "n2"}), &labv1.ApplyRequest{Topology: topo})
	wantCode(t, err, codes.PermissionDenied)
	e.unchanged(t, before)

	// Its owner and admins may.
	if _, err := e.lab.Apply(as(ctx, bob), &labv1.ApplyRequest{Topology: topo}); err != nil {
		t.Errorf("owner's apply: %v", err)
	}
	if _, err := e.lab.Apply(as(ctx, admin), &labv1.ApplyRequest{Topology: topo}); err != nil {
		t.Errorf("admin's apply: %v", err)
	}
	wantOwner(t, e.getLab(t, "demo"), "bob", false)

	// A lab without an owner (made before users existed): admins only.
	if _, err := e.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "old", Lab: &labv1.Lab{}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.lab.UpdateLab(as(ctx, alice), &labv1.UpdateLabRequest{Lab: &labv1.Lab{Name: "labs/old", Description: "mine"}})
	if st := wantCode(t, err, codes.PermissionDenied); !strings.Contains(st.Message(), "no owner") {
		t.Errorf("ownerless lab: %q", st.Message())
	}
	if _, err := e.lab.UpdateLab(as(ctx, admin), &labv1.UpdateLabRequest{Lab: &labv1.Lab{Name: "labs/old", Description: "mine"}}); err != nil {
		t.Errorf("admin's update of an ownerless lab: %v", err)
	}
}

// TestLegacyLabNotTaken: a lab whose networks and hosts were stored before
// labs had records (and owners) is no student's to take by applying to it:
// it reads as a lab without an owner, which only admins change.
func TestLegacyLabNotTaken(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	if _, err := e.lab.Apply(as(ctx, admin), &labv1.ApplyRequest{Topology: demo()}); err != nil {
		t.Fatal(err)
	}
	// What an old data directory holds: the lab's record gone, its
	// networks and hosts there.
	if _, err := e.store.Update(func(tx *store.Tx) error {
		tx.Delete(lab.LabName("demo"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := e.snapshot()
	topo := demo()
	topo.Description = "alice's now"
	_, err := e.lab.Apply(as(ctx, alice), &labv1.ApplyRequest{Topology: topo})
	if st := wantCode(t, err, codes.PermissionDenied); !strings.Contains(st.Message(), "no owner") {
		t.Errorf("apply to a legacy lab: %q; want it to say the lab has no owner", st.Message())
	}
	_, err = e.lab.DeleteHost(as(ctx, alice), &labv1.DeleteHostRequest{Name: "labs/demo/hosts/h1"})
	wantCode(t, err, codes.PermissionDenied)
	e.unchanged(t, before)
	if _, err := e.lab.Apply(as(ctx, admin), &labv1.ApplyRequest{Topology: topo}); err != nil {
		t.Errorf("an admin applies to the legacy lab: %v", err)
	}
}
