package api_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// clock is a settable Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)

func newAuthEnv(t *testing.T) (*env, *clock) {
	c := &clock{now: t0}
	e := newEnv(t, false, func(cfg *api.Config) {
		cfg.Now = c.Now
		cfg.Invite = func() (string, string) { return "10.1.2.3:7443", "sha256:abcd" }
	})
	return e, c
}

// tokenPrincipal is what the interceptor makes of a bearer token.
func tokenPrincipal(t *testing.T, e *env, secret string) *auth.Principal {
	t.Helper()
	id, _, err := identity.ParseToken(secret)
	if err != nil {
		t.Fatalf("secret %q: %v", secret, err)
	}
	tok, ok := lab.NewDirectory(e.store).Token(id)
	if !ok {
		t.Fatalf("token %s not stored", id)
	}
	role, _ := lab.NewDirectory(e.store).User(tok.User)
	return &auth.Principal{User: tok.User, Role: role, TokenID: id, TokenKind: tok.Kind}
}

func TestCreateUser(t *testing.T) {
	e, _ := newAuthEnv(t)
	ctx := as(t.Context(), admin)
	resp, err := e.users.CreateUser(ctx, &labv1.CreateUserRequest{UserId: "alice", User: &labv1.User{Role: labv1.Role_ROLE_STUDENT, Name: "users/ignored"}})
	if err != nil {
		t.Fatal(err)
	}
	if u := resp.User; u.Name != "users/alice" || u.Role != labv1.Role_ROLE_STUDENT || !u.CreateTime.AsTime().Equal(t0) {
		t.Errorf("CreateUser = %v", u)
	}
	_, err = e.users.CreateUser(ctx, &labv1.CreateUserRequest{UserId: "alice", User: &labv1.User{Role: labv1.Role_ROLE_ADMIN}})
	wantCode(t, err, codes.AlreadyExists)

	before := e.snapshot()
	for _, c := range []struct {
		req   *labv1.CreateUserRequest
		field string
	}{
		{&labv1.CreateUserRequest{UserId: "Bob", User: &labv1.User{Role: labv1.Role_ROLE_VIEWER}}, "user_id"},
		{&labv1.CreateUserRequest{UserId: "", User: &labv1.User{Role: labv1.Role_ROLE_VIEWER}}, "user_id"},
		{&labv1.CreateUserRequest{UserId: "-", User: &labv1.User{Role: labv1.Role_ROLE_VIEWER}}, "user_id"},
		{&labv1.CreateUserRequest{UserId: "a/b", User: &labv1.User{Role: labv1.Role_ROLE_VIEWER}}, "user_id"},
		{&labv1.CreateUserRequest{UserId: "bob"}, "user.role"},
		{&labv1.CreateUserRequest{UserId: "bob", User: &labv1.User{}}, "user.role"},
		{&labv1.CreateUserRequest{UserId: "bob", User: &labv1.User{Role: 42}}, "user.role"},
		{&labv1.CreateUserRequest{UserId: "BOB"}, "user_id"}, // both: the first named first
	} {
		_, err := e.users.CreateUser(ctx, c.req)
		wantField(t, err, c.field)
	}
	e.unchanged(t, before)

	g, err := e.users.GetUser(ctx, &labv1.GetUserRequest{Name: "users/alice"})
	if err != nil || g.User.Role != labv1.Role_ROLE_STUDENT {
		t.Errorf("GetUser = %v, %v", g, err)
	}
	_, err = e.users.GetUser(ctx, &labv1.GetUserRequest{Name: "alice"})
	wantField(t, err, "name")
	_, err = e.users.GetUser(ctx, &labv1.GetUserRequest{Name: "users/bob"})
	wantCode(t, err, codes.NotFound)

	e.addUsers(t, admin, bob)
	l, err := e.users.ListUsers(ctx, &labv1.ListUsersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range l.Users {
		names = append(names, u.Name+"="+strings.TrimPrefix(u.Role.String(), "ROLE_"))
	}
	if got := strings.Join(names, " "); got != "users/alice=STUDENT users/bob=STUDENT users/root=ADMIN" {
		t.Errorf("ListUsers = %s", got)
	}
}

func TestDeleteUser(t *testing.T) {
	e, _ := newAuthEnv(t)
	ctx := as(t.Context(), admin)
	e.addUsers(t, admin, alice, bob)
	aliceTok, err := e.users.CreateToken(ctx, &labv1.CreateTokenRequest{Parent: "users/alice"})
	if err != nil {
		t.Fatal(err)
	}
	bobTok, err := e.users.CreateToken(ctx, &labv1.CreateTokenRequest{Parent: "users/bob"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.lab.Apply(as(t.Context(), alice), &labv1.ApplyRequest{Topology: demo()}); err != nil {
		t.Fatal(err)
	}

	_, err = e.users.DeleteUser(ctx, &labv1.DeleteUserRequest{Name: "alice"})
	wantField(t, err, "name")
	_, err = e.users.DeleteUser(ctx, &labv1.DeleteUserRequest{Name: "users/carol"})
	wantCode(t, err, codes.NotFound)
	_, err = e.users.DeleteUser(ctx, &labv1.DeleteUserRequest{Name: "users/root"})
	if st := wantCode(t, err, codes.FailedPrecondition); !strings.Contains(st.Message(), "last admin") {
		t.Errorf("deleting the last admin: %q", st.Message())
	}

	if _, err := e.users.DeleteUser(ctx, &labv1.DeleteUserRequest{Name: "users/alice"}); err != nil {
		t.Fatal(err)
	}
	d := lab.NewDirectory(e.store)
	if _, ok := d.User("alice"); ok {
		t.Error("alice still exists")
	}
	if _, ok := d.Token(strings.TrimPrefix(aliceTok.Token.Name, "users/alice/tokens/")); ok {
		t.Error("alice's token survived her")
	}
	if _, ok := d.Token(strings.TrimPrefix(bobTok.Token.Name, "users/bob/tokens/")); !ok {
		t.Error("bob's token went with alice")
	}
	// Her lab stays, owned by no one.
	wantOwner(t, e.getLab(t, "demo"), "", false)

	// With a second admin, the first may go.
	_, err = e.users.CreateUser(ctx, &labv1.CreateUserRequest{UserId: "root2", User: &labv1.User{Role: labv1.Role_ROLE_ADMIN}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.users.DeleteUser(ctx, &labv1.DeleteUserRequest{Name: "users/root"}); err != nil {
		t.Errorf("deleting one of two admins: %v", err)
	}
	_, err = e.users.DeleteUser(ctx, &labv1.DeleteUserRequest{Name: "users/root2"})
	wantCode(t, err, codes.FailedPrecondition)
}

func TestCreateToken(t *testing.T) {
	e, _ := newAuthEnv(t)
	ctx := as(t.Context(), admin)
	e.addUsers(t, alice)
	resp, err := e.users.CreateToken(ctx, &labv1.CreateTokenRequest{Parent: "users/alice", Description: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	tok := resp.Token
	id, secret, err := identity.ParseToken(resp.Secret)
	if err != nil {
		t.Fatalf("secret %q: %v", resp.Secret, err)
	}
	if tok.Name != "users/alice/tokens/"+id || tok.Kind != labv1.TokenKind_TOKEN_KIND_SESSION || tok.Description != "laptop" ||
		!tok.CreateTime.AsTime().Equal(t0) || !tok.ExpireTime.AsTime().Equal(t0.Add(30*24*time.Hour)) {
		t.Errorf("session token = %v", tok)
	}
	if resp.Server != "" || resp.CaHash != "" {
		t.Errorf("a session token came with server %q, CA hash %q", resp.Server, resp.CaHash)
	}
	stored, ok := lab.NewDirectory(e.store).Token(id)
	if !ok || !stored.Matches(secret) || stored.User != "alice" {
		t.Errorf("stored token %+v does not match its secret", stored)
	}
	recs, _ := e.store.Snapshot()
	for _, r := range recs {
		if strings.Contains(string(r.Value), secret) {
			t.Errorf("record %s holds the secret", r.Key)
		}
	}

	inv, err := e.users.CreateToken(ctx, &labv1.CreateTokenRequest{Parent: "users/alice", Kind: labv1.TokenKind_TOKEN_KIND_INVITE})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Token.Kind != labv1.TokenKind_TOKEN_KIND_INVITE || !inv.Token.ExpireTime.AsTime().Equal(t0.Add(time.Hour)) ||
		inv.Server != "10.1.2.3:7443" || inv.CaHash != "sha256:abcd" {
		t.Errorf("invite = %v", inv)
	}
	year, err := e.users.CreateToken(ctx, &labv1.CreateTokenRequest{Parent: "users/alice", Ttl: durationpb.New(365 * 24 * time.Hour)})
	if err != nil || !year.Token.ExpireTime.AsTime().Equal(t0.Add(365*24*time.Hour)) {
		t.Errorf("a year's token: %v, %v", year, err)
	}

	before := e.snapshot()
	for _, c := range []struct {
		req   *labv1.CreateTokenRequest
		field string
	}{
		{&labv1.CreateTokenRequest{Parent: "alice"}, "parent"},
		{&labv1.CreateTokenRequest{Parent: "users/-"}, "parent"},
		{&labv1.CreateTokenRequest{Parent: ""}, "parent"},
		{&labv1.CreateTokenRequest{Parent: "users/alice", Kind: 7}, "kind"},
		{&labv1.CreateTokenRequest{Parent: "users/alice", Ttl: durationpb.New(0)}, "ttl"},
		{&labv1.CreateTokenRequest{Parent: "users/alice", Ttl: durationpb.New(-time.Hour)}, "ttl"},
		{&labv1.CreateTokenRequest{Parent: "users/alice", Ttl: durationpb.New(366 * 24 * time.Hour)}, "ttl"},
		{&labv1.CreateTokenRequest{Parent: "users/alice", Ttl: &durationpb.Duration{Seconds: 1, Nanos: -1}}, "ttl"},
		{&labv1.CreateTokenRequest{Parent: "users/alice", Description: strings.Repeat("x", 257)}, "description"},
	} {
		_, err := e.users.CreateToken(ctx, c.req)
		wantField(t, err, c.field)
	}
	_, err = e.users.CreateToken(ctx, &labv1.CreateTokenRequest{Parent: "users/bob"})
	wantCode(t, err, codes.NotFound)
	e.unchanged(t, before)
}

func TestListAndRevokeTokens(t *testing.T) {
	e, _ := newAuthEnv(t)
	ctx := as(t.Context(), admin)
	e.addUsers(t, alice, bob)
	mk := func(user string) string {
		t.Helper()
		resp, err := e.users.CreateToken(ctx, &labv1.CreateTokenRequest{Parent: "users/" + user})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Token.Name
	}
	a1, a2, b1 := mk("alice"), mk("alice"), mk("bob")
	list := func(parent string) string {
		t.Helper()
		resp, err := e.users.ListTokens(ctx, &labv1.ListTokensRequest{Parent: parent})
		if err != nil {
			t.Fatalf("ListTokens %s: %v", parent, err)
		}
		var names []string
		for _, tk := range resp.Tokens {
			names = append(names, tk.Name)
		}
		return strings.Join(names, " ")
	}
	if got, want := list("users/alice"), strings.Join(sorted(a1, a2), " "); got != want {
		t.Errorf("alice's tokens: %s, want %s", got, want)
	}
	if got, want := list("users/-"), strings.Join(append(sorted(a1, a2), b1), " "); got != want {
		t.Errorf("every token: %s, want %s", got, want)
	}
	_, err := e.users.ListTokens(ctx, &labv1.ListTokensRequest{Parent: "alice"})
	wantField(t, err, "parent")
	_, err = e.users.ListTokens(ctx, &labv1.ListTokensRequest{Parent: "users/carol"})
	wantCode(t, err, codes.NotFound)

	before := e.snapshot()
	for _, name := range []string{"", "users/alice", "users/alice/tokens/", "users/alice/tokens/NOPE", "alice/tokens/abc"} {
		_, err := e.users.RevokeToken(ctx, &labv1.RevokeTokenRequest{Name: name})
		wantField(t, err, "name")
	}
	// Another user's token, under alice's name: not found.
	_, err = e.users.RevokeToken(ctx, &labv1.RevokeTokenRequest{Name: strings.Replace(b1, "users/bob", "users/alice", 1)})
	wantCode(t, err, codes.NotFound)
	_, err = e.users.RevokeToken(ctx, &labv1.RevokeTokenRequest{Name: "users/alice/tokens/aaaaaaaaaa"})
	wantCode(t, err, codes.NotFound)
	e.unchanged(t, before)

	if _, err := e.users.RevokeToken(ctx, &labv1.RevokeTokenRequest{Name: a1}); err != nil {
		t.Fatal(err)
	}
	// users/- names whichever user's token it is.
	if _, err := e.users.RevokeToken(ctx, &labv1.RevokeTokenRequest{Name: strings.Replace(b1, "users/bob", "users/-", 1)}); err != nil {
		t.Fatal(err)
	}
	if got := list("users/-"); got != a2 {
		t.Errorf("tokens after two revocations: %s, want %s", got, a2)
	}
	_, err = e.users.RevokeToken(ctx, &labv1.RevokeTokenRequest{Name: a1})
	wantCode(t, err, codes.NotFound)
}

func sorted(a, b string) []string {
	if a > b {
		return []string{b, a}
	}
	return []string{a, b}
}

func TestWhoAmI(t *testing.T) {
	e, _ := newAuthEnv(t)
	e.addUsers(t, alice)
	resp, err := e.users.CreateToken(as(t.Context(), admin), &labv1.CreateTokenRequest{Parent: "users/alice", Description: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	me, err := e.users.WhoAmI(as(t.Context(), tokenPrincipal(t, e, resp.Secret)), &labv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if me.User != "users/alice" || me.Role != labv1.Role_ROLE_STUDENT || me.Token.GetName() != resp.Token.Name || me.Token.GetDescription() != "laptop" {
		t.Errorf("WhoAmI = %v", me)
	}
	_, err = e.users.WhoAmI(t.Context(), &labv1.WhoAmIRequest{})
	if st := wantCode(t, err, codes.Unauthenticated); !strings.Contains(st.Message(), "labctl login") {
		t.Errorf("WhoAmI without a principal: %q", st.Message())
	}
	_, err = e.users.WhoAmI(as(t.Context(), &auth.Principal{Node: "n2"}), &labv1.WhoAmIRequest{})
	wantCode(t, err, codes.PermissionDenied)
}

func TestCanI(t *testing.T) {
	e, _ := newAuthEnv(t)
	e.addUsers(t, alice, bob)
	if _, err := e.lab.Apply(as(t.Context(), bob), &labv1.ApplyRequest{Topology: demo()}); err != nil {
		t.Fatal(err)
	}
	ask := func(p *auth.Principal, verb, resource, user string) (*labv1.CanIResponse, error) {
		return e.users.CanI(as(t.Context(), p), &labv1.CanIRequest{Verb: verb, Resource: resource, User: user})
	}
	for _, c := range []struct {
		p               *auth.Principal
		verb, res, user string
		allowed         bool
		reason          string
	}{
		{alice, "create", "labs/mine", "", true, ""},
		{alice, "DELETE", "labs/demo", "", false, "owned by bob"},
		{bob, "delete", "labs/demo/hosts/h1", "", true, ""},
		{admin, "delete", "labs/demo", "users/alice", false, "owned by bob"},
		{admin, "capture", "labs/demo/hosts/h1", "bob", true, ""},
		{admin, "transfer", "labs/demo", "", true, ""},
	} {
		resp, err := ask(c.p, c.verb, c.res, c.user)
		if err != nil {
			t.Errorf("%s can-i %s %s (as %q): %v", c.p, c.verb, c.res, c.user, err)
			continue
		}
		if resp.Allowed != c.allowed || !strings.Contains(resp.Reason, c.reason) || c.allowed && resp.Reason != "" {
			t.Errorf("%s can-i %s %s (as %q) = %v, want %v %q", c.p, c.verb, c.res, c.user, resp, c.allowed, c.reason)
		}
	}
	_, err := ask(alice, "destroy", "labs/demo", "")
	wantField(t, err, "verb")
	_, err = ask(alice, "get", "", "")
	wantField(t, err, "resource")
	_, err = ask(admin, "get", "labs/demo", "users/Bob")
	wantField(t, err, "user")
	_, err = ask(admin, "get", "labs/demo", "users/carol")
	wantCode(t, err, codes.NotFound)
	// Only admins ask for others.
	_, err = ask(alice, "get", "labs/demo", "users/bob")
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.users.CanI(t.Context(), &labv1.CanIRequest{Verb: "get", Resource: "labs"})
	wantCode(t, err, codes.Unauthenticated)
}

func TestLogin(t *testing.T) {
	e, clk := newAuthEnv(t)
	e.addUsers(t, alice)
	invite := func() (*labv1.CreateTokenResponse, *auth.Principal) {
		t.Helper()
		resp, err := e.users.CreateToken(as(t.Context(), admin), &labv1.CreateTokenRequest{Parent: "users/alice", Kind: labv1.TokenKind_TOKEN_KIND_INVITE})
		if err != nil {
			t.Fatal(err)
		}
		return resp, tokenPrincipal(t, e, resp.Secret)
	}
	_, p := invite()
	// WhoAmI answers an invite.
	if me, err := e.users.WhoAmI(as(t.Context(), p), &labv1.WhoAmIRequest{}); err != nil || me.Token.GetKind() != labv1.TokenKind_TOKEN_KIND_INVITE {
		t.Errorf("WhoAmI with an invite = %v, %v", me, err)
	}
	before := e.snapshot()
	_, err := e.users.Login(as(t.Context(), p), &labv1.LoginRequest{Ttl: durationpb.New(0)})
	wantField(t, err, "ttl")
	_, err = e.users.Login(as(t.Context(), p), &labv1.LoginRequest{Description: strings.Repeat("é", 200)})
	wantField(t, err, "description")
	e.unchanged(t, before)

	resp, err := e.users.Login(as(t.Context(), p), &labv1.LoginRequest{Description: "laptop", Ttl: durationpb.New(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	sp := tokenPrincipal(t, e, resp.Secret)
	if sp.User != "alice" || sp.TokenKind != auth.Session || resp.Token.Description != "laptop" || !resp.Token.ExpireTime.AsTime().Equal(t0.Add(48*time.Hour)) {
		t.Errorf("Login = %v (%+v)", resp, sp)
	}
	if _, ok := lab.NewDirectory(e.store).Token(p.TokenID); ok {
		t.Error("the invite was not used up")
	}
	_, err = e.users.Login(as(t.Context(), p), &labv1.LoginRequest{})
	wantCode(t, err, codes.Unauthenticated)
	// A session token does not log in again; nor does no token.
	_, err = e.users.Login(as(t.Context(), sp), &labv1.LoginRequest{})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.users.Login(t.Context(), &labv1.LoginRequest{})
	wantCode(t, err, codes.Unauthenticated)

	// An expired invite.
	_, p = invite()
	clk.add(time.Hour)
	_, err = e.users.Login(as(t.Context(), p), &labv1.LoginRequest{})
	if st := wantCode(t, err, codes.Unauthenticated); !strings.Contains(st.Message(), "expired") {
		t.Errorf("expired invite: %q", st.Message())
	}
}

// TestLoginForwarded: Login is a write; on a node that does not lead, it
// is forwarded to the leader, which uses up the invite the caller
// presented to the first node.
func TestLoginForwarded(t *testing.T) {
	leader, _ := newAuthEnv(t)
	leader.addUsers(t, alice)
	inv, err := leader.users.CreateToken(as(t.Context(), admin), &labv1.CreateTokenRequest{Parent: "users/alice", Kind: labv1.TokenKind_TOKEN_KIND_INVITE})
	if err != nil {
		t.Fatal(err)
	}
	p := tokenPrincipal(t, leader, inv.Secret)
	follower := newEnv(t, false, func(c *api.Config) {
		c.Writer = notLeaderWriter{"leader"}
		c.Peer = func(string) (grpc.ClientConnInterface, error) {
			return grpc.NewClient(leader.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		}
	})
	resp, err := follower.users.Login(as(t.Context(), p), &labv1.LoginRequest{})
	if err != nil {
		t.Fatalf("forwarded Login: %v", err)
	}
	if sp := tokenPrincipal(t, leader, resp.Secret); sp.User != "alice" || sp.TokenKind != auth.Session {
		t.Errorf("forwarded Login made %+v", sp)
	}
	if _, ok := lab.NewDirectory(leader.store).Token(p.TokenID); ok {
		t.Error("the invite was not used up")
	}
	// Login believes the principal only, never metadata that names an
	// invite (the interceptor's to check).
	inv, err = leader.users.CreateToken(as(t.Context(), admin), &labv1.CreateTokenRequest{Parent: "users/alice", Kind: labv1.TokenKind_TOKEN_KIND_INVITE})
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := identity.ParseToken(inv.Secret)
	ctx := metadata.AppendToOutgoingContext(as(t.Context(), alice), "labnet-forwarded-token", id, "labnet-forwarded-invite", id)
	_, err = leader.users.Login(ctx, &labv1.LoginRequest{})
	wantCode(t, err, codes.PermissionDenied)
}
