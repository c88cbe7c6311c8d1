package auth

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// A member node's certificate does not let it name users: a student
// with root on her member labd holds its certificate. It passes on the
// caller's own bearer token; a control node names the user.
func TestMemberForwarding(t *testing.T) {
	c := newClassroom(t)
	ctx := ctxT(t)
	_, teachID := c.dir.token("teach", Admin, Session, time.Time{})
	fwd := func(ctx context.Context, kv ...string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, kv...)
	}
	whoami := func(au labv1.AuthServiceClient, ctx context.Context) (string, error) {
		who, err := au.WhoAmI(ctx, &labv1.WhoAmIRequest{})
		return who.GetUser(), err
	}

	for _, kind := range []string{KindMember, ""} { // no kind counts as member
		name := "m-" + kind
		au := labv1.NewAuthServiceClient(c.connKind(name, kind))
		// The member forwards as the teacher: refused, and counted.
		for _, key := range identityKeys {
			before := c.ic.refused.Count(name, "member_forwarded_user")
			_, err := whoami(au, fwd(ctx, ForwardedUserKey, "teach", key, teachID))
			wantCode(t, name+" forwards teach with "+key, err, codes.PermissionDenied, "node "+name+" is a member")
			if got := c.ic.refused.Count(name, "member_forwarded_user"); got != before+1 {
				t.Errorf("%s: member_forwarded_user counted %d, want %d", name, got, before+1)
			}
		}
		// With alice's own token: alice, via the member, and only alice.
		got, err := whoami(au, withToken(ctx, c.alice))
		if err != nil || got != "users/alice|alice via "+name {
			t.Errorf("%s passes on alice's token: %q, %v", name, got, err)
		}
		got, err = whoami(au, fwd(withToken(ctx, c.alice), ForwardedByKey, name))
		if err != nil || got != "users/alice|alice via "+name {
			t.Errorf("%s passes on alice's token, marked as forwarded: %q, %v", name, got, err)
		}
		_, err = whoami(au, fwd(withToken(ctx, c.alice), ForwardedByKey, "n1"))
		wantCode(t, name+" marks its call as another node's", err, codes.PermissionDenied, "may name only itself")
		_, err = whoami(au, fwd(withToken(ctx, c.alice), ForwardedUserKey, "teach"))
		wantCode(t, name+" with alice's token, naming teach", err, codes.PermissionDenied, "is a member")
		lab := labv1.NewLabServiceClient(c.connKind(name, kind))
		_, err = lab.DeleteHost(withToken(ctx, c.alice), &labv1.DeleteHostRequest{Name: "labs/b/hosts/h1"})
		wantCode(t, name+" with alice's token deletes bob's host", err, codes.PermissionDenied, "alice via "+name)
		_, err = whoami(au, withToken(ctx, "lnt_nope"))
		wantCode(t, name+" with a bad token", err, codes.Unauthenticated)
		// On its own behalf it is still a node.
		if _, err := labv1.NewControlServiceClient(c.connKind(name, kind)).Follow(ctx, &labv1.FollowRequest{Node: name}); err != nil {
			t.Errorf("%s follows: %v", name, err)
		}
	}

	// A control node names the user it forwards for.
	au := labv1.NewAuthServiceClient(c.conn("ctl"))
	got, err := whoami(au, fwd(ctx, ForwardedUserKey, "teach", ForwardedTokenKey, teachID))
	if err != nil || got != "users/teach|teach via ctl" {
		t.Errorf("control forwards teach: %q, %v", got, err)
	}
	// and may pass on a bearer token too.
	got, err = whoami(au, withToken(ctx, c.bob))
	if err != nil || got != "users/bob|bob via ctl" {
		t.Errorf("control passes on bob's token: %q, %v", got, err)
	}
}

func TestForwardBearer(t *testing.T) {
	ctx := context.Background()
	if got, err := ForwardBearer(ctx); got != ctx || err != nil {
		t.Error("ForwardBearer without a principal changed ctx")
	}
	in := metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer secret"))
	uctx, err := ForwardBearer(NewContext(in, &Principal{User: "alice", Role: Student, TokenID: "abcdefghij"}))
	if err != nil {
		t.Fatal(err)
	}
	uctx, _ = ForwardBearer(uctx) // once is enough
	md, _ := metadata.FromOutgoingContext(uctx)
	if got := md.Get("authorization"); !slices.Equal(got, []string{"Bearer secret"}) {
		t.Errorf("authorization = %q", got)
	}
	for _, k := range identityKeys {
		if got := md.Get(k); len(got) != 0 {
			t.Errorf("%s forwarded: %q", k, got)
		}
	}
	// A call forwarded here by a control node has no token to pass on.
	fctx := NewContext(metadata.NewIncomingContext(ctx, metadata.Pairs(ForwardedUserKey, "alice")), &Principal{User: "alice", Role: Student, Via: "ctl"})
	_, err = ForwardBearer(fctx)
	wantCode(t, "forward without a token", err, codes.FailedPrecondition, "node ctl", "without one")
}
