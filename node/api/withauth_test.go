package api_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// bearer is ctx for a call with token.
func bearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// TestWithInterceptor runs the handlers behind node/auth's interceptor,
// as the daemon does, with bearer tokens: the two halves of issue 13's
// model (the interceptor decides, the handlers own labs and tokens) fit.
func TestWithInterceptor(t *testing.T) {
	e := startEnv(t, false, true)
	ctx := t.Context()
	rootTok, id, hash := identity.NewToken()
	if _, err := e.store.Update(func(tx *store.Tx) error {
		if err := lab.PutUser(tx, lab.User{ID: "root", Role: auth.Admin}); err != nil {
			return err
		}
		return lab.PutToken(tx, auth.Token{ID: id, User: "root", Kind: auth.Session, Hash: hash})
	}); err != nil {
		t.Fatal(err)
	}
	root := bearer(ctx, rootTok)

	_, err := e.lab.ListLabs(ctx, &labv1.ListLabsRequest{})
	wantCode(t, err, codes.Unauthenticated)

	// The admin makes alice and bob; alice joins by invite, bob by a
	// session token.
	for _, u := range []string{"alice", "bob"} {
		if _, err := e.users.CreateUser(root, &labv1.CreateUserRequest{UserId: u, User: &labv1.User{Role: labv1.Role_ROLE_STUDENT}}); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := e.users.CreateToken(root, &labv1.CreateTokenRequest{Parent: "users/alice", Kind: labv1.TokenKind_TOKEN_KIND_INVITE})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.lab.ListLabs(bearer(ctx, inv.Secret), &labv1.ListLabsRequest{})
	wantCode(t, err, codes.PermissionDenied) // an invite only logs in
	login, err := e.users.Login(bearer(ctx, inv.Secret), &labv1.LoginRequest{})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	_, err = e.users.WhoAmI(bearer(ctx, inv.Secret), &labv1.WhoAmIRequest{})
	wantCode(t, err, codes.Unauthenticated) // used up
	alice := bearer(ctx, login.Secret)
	me, err := e.users.WhoAmI(alice, &labv1.WhoAmIRequest{})
	if err != nil || me.User != "users/alice" || me.Token.GetName() != login.Token.Name {
		t.Fatalf("WhoAmI = %v, %v", me, err)
	}
	bt, err := e.users.CreateToken(root, &labv1.CreateTokenRequest{Parent: "users/bob"})
	if err != nil {
		t.Fatal(err)
	}
	bob := bearer(ctx, bt.Secret)

	// Alice's lab is hers; bob may neither apply over it nor see it.
	if _, err := e.lab.Apply(alice, &labv1.ApplyRequest{Topology: demo()}); err != nil {
		t.Fatalf("alice's apply: %v", err)
	}
	wantOwner(t, e.getLabAs(t, alice, "demo"), "alice", false)
	_, err = e.lab.Apply(bob, &labv1.ApplyRequest{Topology: demo()})
	if st := wantCode(t, err, codes.PermissionDenied); !strings.Contains(st.Message(), "alice") {
		t.Errorf("bob's apply over alice's lab: %q", st.Message())
	}
	if _, err := e.lab.CreateLab(bob, &labv1.CreateLabRequest{LabId: "bobs", Lab: &labv1.Lab{}}); err != nil {
		t.Fatal(err)
	}
	labsOf := func(ctx context.Context) string {
		t.Helper()
		resp, err := e.lab.ListLabs(ctx, &labv1.ListLabsRequest{})
		if err != nil {
			t.Fatalf("ListLabs: %v", err)
		}
		var names []string
		for _, l := range resp.Labs {
			names = append(names, l.Name+"="+l.Owner)
		}
		return strings.Join(names, " ")
	}
	if got := labsOf(bob); got != "labs/bobs=bob" {
		t.Errorf("bob lists %s", got)
	}
	if got := labsOf(root); got != "labs/bobs=bob labs/demo=alice" {
		t.Errorf("the admin lists %s", got)
	}
	can, err := e.users.CanI(bob, &labv1.CanIRequest{Verb: "delete", Resource: "labs/demo"})
	if err != nil || can.Allowed || !strings.Contains(can.Reason, "alice") {
		t.Errorf("bob can-i delete labs/demo = %v, %v", can, err)
	}

	// Shared: bob sees it, still cannot change it.
	topo := demo()
	topo.Shared = true
	if _, err := e.lab.Apply(alice, &labv1.ApplyRequest{Topology: topo}); err != nil {
		t.Fatal(err)
	}
	if got := labsOf(bob); got != "labs/bobs=bob labs/demo=alice" {
		t.Errorf("bob lists %s once demo is shared", got)
	}
	_, err = e.lab.DeleteHost(bob, &labv1.DeleteHostRequest{Name: "labs/demo/hosts/h1"})
	wantCode(t, err, codes.PermissionDenied)

	// Only an admin hands a lab on.
	transfer := &labv1.UpdateLabRequest{Lab: &labv1.Lab{Name: "labs/demo", Owner: "bob"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"owner"}}}
	_, err = e.lab.UpdateLab(alice, transfer)
	wantCode(t, err, codes.PermissionDenied)
	if _, err := e.lab.UpdateLab(root, transfer); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	if _, err := e.lab.DeleteHost(bob, &labv1.DeleteHostRequest{Name: "labs/demo/hosts/h1"}); err != nil {
		t.Errorf("bob's delete in the lab handed to him: %v", err)
	}

	// Revoked: refused at once.
	if _, err := e.users.RevokeToken(alice, &labv1.RevokeTokenRequest{Name: login.Token.Name}); err != nil {
		t.Fatalf("alice revokes her own token: %v", err)
	}
	_, err = e.lab.ListLabs(alice, &labv1.ListLabsRequest{})
	wantCode(t, err, codes.Unauthenticated)
	// The last admin stays.
	_, err = e.users.DeleteUser(root, &labv1.DeleteUserRequest{Name: "users/root"})
	wantCode(t, err, codes.FailedPrecondition)
}

func (e *env) getLabAs(t *testing.T, ctx context.Context, id string) *labv1.Lab {
	t.Helper()
	resp, err := e.lab.GetLab(ctx, &labv1.GetLabRequest{Name: "labs/" + id})
	if err != nil {
		t.Fatalf("GetLab %s: %v", id, err)
	}
	return resp.Lab
}
