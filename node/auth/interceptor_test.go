package auth

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/labnet-dev/labnet/node/identity"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// classroom is the setting of most tests: admin "teach", students alice
// (owns lab a) and bob (owns lab b), viewer "vic", and lab s of bob's
// shared for viewing.
type classroom struct {
	*env
	admin, alice, bob, vic string // session tokens
}

func newClassroom(t *testing.T) *classroom {
	e := newEnv(t)
	c := &classroom{env: e}
	c.admin, _ = e.dir.token("teach", Admin, Session, time.Time{})
	c.alice, _ = e.dir.token("alice", Student, Session, testNow.Add(time.Hour))
	c.bob, _ = e.dir.token("bob", Student, Session, time.Time{})
	c.vic, _ = e.dir.token("vic", Viewer, Session, time.Time{})
	e.dir.setLab("a", LabInfo{Owner: "alice"})
	e.dir.setLab("b", LabInfo{Owner: "bob"})
	e.dir.setLab("s", LabInfo{Owner: "bob", Shared: true})
	return c
}

func TestUnauthenticated(t *testing.T) {
	c := newClassroom(t)
	lab := labv1.NewLabServiceClient(c.conn(""))
	get := func(ctx context.Context) error {
		_, err := lab.GetHost(ctx, &labv1.GetHostRequest{Name: "labs/a/hosts/h1"})
		return err
	}
	ctx := ctxT(t)
	_, id, _ := identity.NewToken()
	wrongSecret := "lnt_" + strings.Split(c.alice, "_")[1] + "_" + strings.Repeat("a", 52)
	goneUser, _ := c.dir.token("gone", Student, Session, time.Time{})
	delete(c.dir.users, "gone")
	expired, _ := c.dir.token("old", Student, Session, testNow)
	for _, tc := range []struct {
		name string
		md   []string
		want string
	}{
		{"none", nil, "this call needs a token"},
		{"basic", []string{"authorization", "Basic YWxpY2U6cHc="}, "is not \"Bearer TOKEN\""},
		{"empty bearer", []string{"authorization", "Bearer "}, "not \"Bearer TOKEN\""},
		{"malformed", []string{"authorization", "Bearer abc"}, "not a labnet token"},
		{"two headers", []string{"authorization", "Bearer " + c.alice, "authorization", "Bearer " + c.bob}, "2 authorization headers"},
		{"unknown", []string{"authorization", "Bearer lnt_" + id + "_" + strings.Repeat("b", 52)}, "unknown or revoked"},
		{"wrong secret", []string{"authorization", "Bearer " + wrongSecret}, "unknown or revoked"},
		{"expired", []string{"authorization", "Bearer " + expired}, "expired at 2026-12-04T12:00:00Z"},
		{"user gone", []string{"authorization", "Bearer " + goneUser}, `user "gone" no longer exists`},
	} {
		wantCode(t, tc.name, get(metadata.AppendToOutgoingContext(ctx, tc.md...)), codes.Unauthenticated, tc.want, "labctl login")
	}

	// A user whose stored role is no role may do nothing.
	odd, _ := c.dir.token("odd", Role("root"), Session, time.Time{})
	wantCode(t, "role root", get(withToken(ctx, odd)), codes.PermissionDenied, `role "root"`)

	// The scheme is case-insensitive.
	if err := get(metadata.AppendToOutgoingContext(ctx, "authorization", "bearer "+c.alice)); err != nil {
		t.Errorf("lowercase bearer: %v", err)
	}
	// Revoked: works, then fails at once.
	tok, tid := c.dir.token("carol", Student, Session, time.Time{})
	c.dir.setLab("c", LabInfo{Owner: "carol"})
	if _, err := lab.GetHost(withToken(ctx, tok), &labv1.GetHostRequest{Name: "labs/c/hosts/h1"}); err != nil {
		t.Fatalf("before revoking: %v", err)
	}
	c.dir.revoke(tid)
	_, err := lab.GetHost(withToken(ctx, tok), &labv1.GetHostRequest{Name: "labs/c/hosts/h1"})
	wantCode(t, "revoked", err, codes.Unauthenticated, "unknown or revoked")
	// Expiry is against Now: alice's token expires in an hour.
	c.now = testNow.Add(2 * time.Hour)
	wantCode(t, "alice after expiry", get(withToken(ctx, c.alice)), codes.Unauthenticated, "expired")

	// Streams too.
	st, err := labv1.NewLiveServiceClient(c.conn("")).Ping(ctx, &labv1.PingRequest{Host: "labs/a/hosts/h1"})
	if err == nil {
		_, err = st.Recv()
	}
	wantCode(t, "ping without token", err, codes.Unauthenticated, "labctl login")
}

func TestPublicMethods(t *testing.T) {
	c := newClassroom(t)
	ctx := ctxT(t)
	conn := c.conn("")
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health without a token: %v", err)
	}
	// Enroll reaches its handler (unimplemented here) without a token.
	_, err := labv1.NewControlServiceClient(conn).Enroll(ctx, &labv1.EnrollRequest{})
	wantCode(t, "enroll", err, codes.Unimplemented)
	// A bad token on a public call is not looked at.
	_, err = healthpb.NewHealthClient(conn).Check(withToken(ctx, "junk"), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Errorf("health with a junk token: %v", err)
	}
}

func TestInviteToken(t *testing.T) {
	c := newClassroom(t)
	ctx := ctxT(t)
	inv, id := c.dir.token("dora", Student, Invite, testNow.Add(time.Hour))
	ctx = withToken(ctx, inv)
	conn := c.conn("")
	au := labv1.NewAuthServiceClient(conn)
	who, err := au.WhoAmI(ctx, &labv1.WhoAmIRequest{})
	if err != nil || who.Token.Kind != labv1.TokenKind_TOKEN_KIND_INVITE || who.Token.Name != id {
		t.Errorf("WhoAmI with an invite = %v, %v", who, err)
	}
	if _, err := au.Login(ctx, &labv1.LoginRequest{}); err != nil {
		t.Errorf("Login with an invite: %v", err)
	}
	_, err = au.CanI(ctx, &labv1.CanIRequest{Verb: "get", Resource: "labs"})
	wantCode(t, "CanI with an invite", err, codes.PermissionDenied, "invite")
	_, err = labv1.NewLabServiceClient(conn).CreateLab(ctx, &labv1.CreateLabRequest{LabId: "d"})
	wantCode(t, "CreateLab with an invite", err, codes.PermissionDenied, "invite")
	_, err = labv1.NewLabServiceClient(conn).ListLabs(ctx, &labv1.ListLabsRequest{})
	wantCode(t, "ListLabs with an invite", err, codes.PermissionDenied, "invite")
	// A session may not Login.
	_, err = au.Login(withToken(ctxT(t), c.alice), &labv1.LoginRequest{})
	wantCode(t, "Login with a session", err, codes.PermissionDenied, "invite")
}

// calls are one call of each kind on lab l's host h1 and network n1.
func calls(conn labConn, l string) map[string]func(context.Context) error {
	host := "labs/" + l + "/hosts/h1"
	return map[string]func(context.Context) error{
		"get": func(ctx context.Context) error {
			_, err := conn.lab.GetHost(ctx, &labv1.GetHostRequest{Name: host})
			return err
		},
		"delete": func(ctx context.Context) error {
			_, err := conn.lab.DeleteHost(ctx, &labv1.DeleteHostRequest{Name: host})
			return err
		},
		"delete lab": func(ctx context.Context) error {
			_, err := conn.lab.DeleteLab(ctx, &labv1.DeleteLabRequest{Name: "labs/" + l})
			return err
		},
		"apply": func(ctx context.Context) error {
			_, err := conn.lab.Apply(ctx, &labv1.ApplyRequest{Topology: &labv1.Topology{Lab: l}})
			return err
		},
		"impair": func(ctx context.Context) error {
			_, err := conn.lab.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: host, Interface: "eth0"})
			return err
		},
		"exec": func(ctx context.Context) error {
			st, err := conn.live.Ping(ctx, &labv1.PingRequest{Host: host})
			if err == nil {
				_, err = st.Recv()
			}
			return err
		},
		"capture": func(ctx context.Context) error {
			st, err := conn.capture.Capture(ctx, &labv1.CaptureRequest{Lab: "labs/" + l, Targets: []string{"h1:eth0", "net/n1"}})
			if err == nil {
				_, err = st.Recv()
			}
			return err
		},
		"dial": func(ctx context.Context) error {
			st, err := conn.socket.Dial(ctx)
			if err == nil {
				err = st.Send(&labv1.DialRequest{Event: &labv1.DialRequest_Open{Open: &labv1.DialOpen{Host: host, Address: "10.0.0.1:80"}}})
			}
			if err == nil {
				_, err = st.Recv()
			}
			return err
		},
	}
}

type labConn struct {
	lab     labv1.LabServiceClient
	live    labv1.LiveServiceClient
	capture labv1.CaptureServiceClient
	socket  labv1.SocketServiceClient
}

func (e *env) labConn(node string) labConn {
	c := e.conn(node)
	return labConn{labv1.NewLabServiceClient(c), labv1.NewLiveServiceClient(c), labv1.NewCaptureServiceClient(c), labv1.NewSocketServiceClient(c)}
}

func TestRoles(t *testing.T) {
	c := newClassroom(t)
	conn := c.labConn("")
	reads := []string{"get"}
	for _, tc := range []struct {
		who, token, lab string
		allowed         []string // the rest are denied
	}{
		{"alice", c.alice, "a", nil}, // nil: everything
		{"alice", c.alice, "b", []string{}},
		{"alice", c.alice, "s", reads}, // shared: view only
		{"bob", c.bob, "a", []string{}},
		{"bob", c.bob, "b", nil},
		{"vic", c.vic, "a", reads},
		{"vic", c.vic, "b", reads},
		{"teach", c.admin, "a", nil},
		{"teach", c.admin, "b", nil},
	} {
		ctx := withToken(ctxT(t), tc.token)
		for name, call := range calls(conn, tc.lab) {
			err := call(ctx)
			what := tc.who + " " + name + " in lab " + tc.lab
			if tc.allowed == nil || slices.Contains(tc.allowed, name) {
				if err != nil {
					t.Errorf("%s: %v, want allowed", what, err)
				}
				continue
			}
			wantCode(t, what, err, codes.PermissionDenied, tc.who, "labs/"+tc.lab)
		}
	}
	// A student creates a lab that does not exist, by CreateLab or Apply.
	ctx := withToken(ctxT(t), c.alice)
	if _, err := conn.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "new"}); err != nil {
		t.Errorf("alice creates lab new: %v", err)
	}
	if _, err := conn.lab.Apply(ctx, &labv1.ApplyRequest{Topology: &labv1.Topology{Lab: "new2"}}); err != nil {
		t.Errorf("alice applies lab new2: %v", err)
	}
	_, err := conn.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "b"})
	wantCode(t, "alice creates bob's lab b", err, codes.PermissionDenied, "may not create labs/b", "owned by bob")
	_, err = conn.lab.CreateLab(withToken(ctxT(t), c.vic), &labv1.CreateLabRequest{LabId: "v"})
	wantCode(t, "vic creates a lab", err, codes.PermissionDenied, "viewers only read")
	// Apply of the default lab names "default".
	c.dir.setLab("default", LabInfo{Owner: "bob"})
	_, err = conn.lab.Apply(ctx, &labv1.ApplyRequest{Topology: &labv1.Topology{}})
	wantCode(t, "alice applies bob's default lab", err, codes.PermissionDenied, "may not update labs/default")
	// Handing a lab on is for admins.
	transfer := &labv1.UpdateLabRequest{Lab: &labv1.Lab{Name: "labs/a", Owner: "bob"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"owner"}}}
	_, err = conn.lab.UpdateLab(ctx, transfer)
	wantCode(t, "alice hands lab a on", err, codes.PermissionDenied, "may not transfer labs/a")
	// A full replacement leaves the owner as it is: an update.
	if _, err := conn.lab.UpdateLab(ctx, &labv1.UpdateLabRequest{Lab: &labv1.Lab{Name: "labs/a", Owner: "bob"}}); err != nil {
		t.Errorf("alice updates lab a: %v", err)
	}
	if _, err := conn.lab.UpdateLab(withToken(ctxT(t), c.admin), transfer); err != nil {
		t.Errorf("admin hands lab a on: %v", err)
	}
}

func TestRevokeOthersToken(t *testing.T) {
	c := newClassroom(t)
	_, bobID := c.dir.token("bob", Student, Session, time.Time{})
	au := labv1.NewAuthServiceClient(c.conn(""))
	ctx := withToken(ctxT(t), c.alice)
	// Bob's token named under alice's own name is still bob's.
	_, err := au.RevokeToken(ctx, &labv1.RevokeTokenRequest{Name: "users/alice/tokens/" + bobID})
	wantCode(t, "alice revokes bob's token", err, codes.PermissionDenied, "users/bob/tokens/"+bobID)
	_, aliceID := c.dir.token("alice", Student, Session, time.Time{})
	if _, err := au.RevokeToken(ctx, &labv1.RevokeTokenRequest{Name: "users/alice/tokens/" + aliceID}); err != nil {
		t.Errorf("alice revokes her own token: %v", err)
	}
}

func TestListFiltered(t *testing.T) {
	c := newClassroom(t)
	lab := labv1.NewLabServiceClient(c.conn(""))
	for _, tc := range []struct {
		token string
		want  []string
	}{
		{c.alice, []string{"a", "s"}},
		{c.bob, []string{"b", "s"}},
		{c.vic, []string{"a", "b", "s"}},
		{c.admin, []string{"a", "b", "s"}},
	} {
		ctx := withToken(ctxT(t), tc.token)
		labs, err := lab.ListLabs(ctx, &labv1.ListLabsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		hosts, err := lab.ListHosts(ctx, &labv1.ListHostsRequest{Parent: "labs/-"})
		if err != nil {
			t.Fatal(err)
		}
		nets, err := lab.ListNetworks(ctx, &labv1.ListNetworksRequest{Parent: "labs/-"})
		if err != nil {
			t.Fatal(err)
		}
		var gotLabs, gotHosts, gotNets, wantHosts, wantNets []string
		for _, l := range labs.Labs {
			gotLabs = append(gotLabs, strings.TrimPrefix(l.Name, "labs/"))
		}
		for _, h := range hosts.Hosts {
			gotHosts = append(gotHosts, h.Name)
		}
		for _, n := range nets.Networks {
			gotNets = append(gotNets, n.Name)
		}
		for _, l := range tc.want {
			wantHosts = append(wantHosts, "labs/"+l+"/hosts/h1")
			wantNets = append(wantNets, "labs/"+l+"/networks/n1")
		}
		slices.Sort(gotLabs)
		slices.Sort(gotHosts)
		slices.Sort(gotNets)
		if !slices.Equal(gotLabs, tc.want) || !slices.Equal(gotHosts, wantHosts) || !slices.Equal(gotNets, wantNets) {
			t.Errorf("lists: labs %v hosts %v networks %v, want labs %v", gotLabs, gotHosts, gotNets, tc.want)
		}
	}
	// A list of one lab the caller may not see is refused outright.
	_, err := lab.ListHosts(withToken(ctxT(t), c.alice), &labv1.ListHostsRequest{Parent: "labs/b"})
	wantCode(t, "alice lists bob's hosts", err, codes.PermissionDenied, "may not list labs/b")
}

func TestWatchFiltered(t *testing.T) {
	c := newClassroom(t)
	lab := labv1.NewLabServiceClient(c.conn(""))
	st, err := lab.Watch(withToken(ctxT(t), c.alice), &labv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		ev, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.TrimPrefix(ev.Type.String(), "WATCH_EVENT_TYPE_")+" "+ev.Name)
		if ev.Type == labv1.WatchEventType_WATCH_EVENT_TYPE_DELETED && ev.Resource != nil {
			t.Errorf("DELETED %s of a lab handed on carries %v", ev.Name, ev.Resource)
		}
	}
	// Lab a is handed to bob mid-stream: alice is told it is gone, and
	// the deletion of a lab she never saw is not sent.
	want := []string{"ADDED labs/a", "ADDED labs/a/hosts/h1", "ADDED labs/s", "SYNCED ", "DELETED labs/a"}
	if !slices.Equal(got, want) {
		t.Errorf("alice's watch:\n got %q\nwant %q", got, want)
	}
	st, err = lab.Watch(withToken(ctxT(t), c.alice), &labv1.WatchRequest{Parent: "labs/b"})
	if err == nil {
		_, err = st.Recv() // the refusal comes with the first receive
	}
	wantCode(t, "alice watches lab b", err, codes.PermissionDenied, "may not watch labs/b")
}

func TestSocketStreamEveryMessage(t *testing.T) {
	c := newClassroom(t)
	sock := labv1.NewSocketServiceClient(c.conn(""))
	st, err := sock.Dial(withToken(ctxT(t), c.alice))
	if err != nil {
		t.Fatal(err)
	}
	open := func(host string) *labv1.DialRequest {
		return &labv1.DialRequest{Event: &labv1.DialRequest_Open{Open: &labv1.DialOpen{Host: host, Address: "10.0.0.1:80"}}}
	}
	if err := st.Send(open("labs/a/hosts/h1")); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Recv(); err != nil || m.GetOpened() == nil {
		t.Fatalf("open own host: %v, %v", m, err)
	}
	if err := st.Send(&labv1.DialRequest{Event: &labv1.DialRequest_Data{Data: []byte("hi")}}); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Recv(); err != nil || string(m.GetData()) != "hi" {
		t.Fatalf("data: %v, %v", m, err)
	}
	// The second open names bob's host: the stream ends, refused.
	if err := st.Send(open("labs/b/hosts/h1")); err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	wantCode(t, "second open of bob's host", err, codes.PermissionDenied, "may not exec labs/b/hosts/h1")
}

func TestForwardedMetadata(t *testing.T) {
	c := newClassroom(t)
	ctx := ctxT(t)
	_, aliceID := c.dir.token("alice", Student, Session, time.Time{})
	fwd := func(ctx context.Context, kv ...string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, kv...)
	}

	// From a client that is not a node: refused, with or without a token,
	// over TLS and in plaintext.
	for _, cc := range []struct {
		name string
		au   labv1.AuthServiceClient
	}{
		{"tls", labv1.NewAuthServiceClient(c.conn(""))},
		{"plaintext", labv1.NewAuthServiceClient(c.plain())},
	} {
		for _, key := range forwardingKeys {
			_, err := cc.au.WhoAmI(fwd(withToken(ctx, c.bob), key, "alice"), &labv1.WhoAmIRequest{})
			wantCode(t, cc.name+" "+key+" from a user", err, codes.PermissionDenied, key, "only from a labnet node's certificate")
			_, err = cc.au.WhoAmI(fwd(ctx, key, "alice"), &labv1.WhoAmIRequest{})
			wantCode(t, cc.name+" "+key+" without a token", err, codes.PermissionDenied, "only from a labnet node's certificate")
		}
	}
	// A certificate of the CA that names no node is no node.
	_, err := labv1.NewAuthServiceClient(c.conn("")).WhoAmI(fwd(ctx, ForwardedUserKey, "alice"), &labv1.WhoAmIRequest{})
	wantCode(t, "no client certificate", err, codes.PermissionDenied)

	// From node n2: the user, with their role from the Directory.
	nodeConn := c.labConn("n2")
	au := labv1.NewAuthServiceClient(c.conn("n2"))
	who, err := au.WhoAmI(fwd(ctx, ForwardedUserKey, "alice", ForwardedByKey, "n2", ForwardedTokenKey, aliceID), &labv1.WhoAmIRequest{})
	if err != nil || who.User != "users/alice|alice via n2" || who.Token.GetName() != aliceID {
		t.Errorf("forwarded WhoAmI = %v, %v", who, err)
	}
	actx := fwd(ctx, ForwardedUserKey, "alice", ForwardedByKey, "n2")
	if _, err := nodeConn.lab.DeleteHost(actx, &labv1.DeleteHostRequest{Name: "labs/a/hosts/h1"}); err != nil {
		t.Errorf("alice via n2 deletes her host: %v", err)
	}
	_, err = nodeConn.lab.DeleteHost(actx, &labv1.DeleteHostRequest{Name: "labs/b/hosts/h1"})
	wantCode(t, "alice via n2 deletes bob's host", err, codes.PermissionDenied, "alice via n2 (student) may not delete labs/b/hosts/h1")
	if err := calls(nodeConn, "a")["dial"](actx); err != nil {
		t.Errorf("alice via n2 dials from her host: %v", err)
	}
	wantCode(t, "alice via n2 dials from bob's host", calls(nodeConn, "b")["dial"](actx), codes.PermissionDenied)

	// A user who does not exist, a revoked or foreign token id: refused.
	_, err = au.WhoAmI(fwd(ctx, ForwardedUserKey, "mallory"), &labv1.WhoAmIRequest{})
	wantCode(t, "forwarded unknown user", err, codes.Unauthenticated, "mallory")
	_, bobID := c.dir.token("bob", Student, Session, time.Time{})
	_, err = au.WhoAmI(fwd(ctx, ForwardedUserKey, "alice", ForwardedTokenKey, bobID), &labv1.WhoAmIRequest{})
	wantCode(t, "forwarded with bob's token id", err, codes.Unauthenticated, "unknown or revoked")
	c.dir.revoke(aliceID)
	_, err = au.WhoAmI(fwd(ctx, ForwardedUserKey, "alice", ForwardedTokenKey, aliceID), &labv1.WhoAmIRequest{})
	wantCode(t, "forwarded revoked token", err, codes.Unauthenticated, "unknown or revoked")
	// A forwarded invite logs in (Login is a write: it goes to the leader).
	_, invID := c.dir.token("dora", Student, Invite, time.Time{})
	for _, key := range []string{ForwardedTokenKey, ForwardedInviteKey} {
		if _, err := au.Login(fwd(ctx, ForwardedUserKey, "dora", key, invID), &labv1.LoginRequest{}); err != nil {
			t.Errorf("forwarded Login with an invite in %s: %v", key, err)
		}
	}
	_, err = au.Login(fwd(ctx, ForwardedUserKey, "dora"), &labv1.LoginRequest{})
	wantCode(t, "forwarded Login without the invite", err, codes.PermissionDenied, "invite")

	// The node on its own behalf: Follow, and nothing of the users'.
	ctl := labv1.NewControlServiceClient(c.conn("n2"))
	fst, err := ctl.Follow(ctx, &labv1.FollowRequest{Node: "n2"})
	if err == nil {
		_, err = fst.Recv()
	}
	if !errors.Is(err, io.EOF) {
		t.Errorf("node Follow: %v", err)
	}
	_, err = nodeConn.lab.GetHost(ctx, &labv1.GetHostRequest{Name: "labs/a/hosts/h1"})
	wantCode(t, "node GetHost", err, codes.PermissionDenied, "node n2")
	fst, err = labv1.NewControlServiceClient(c.conn("")).Follow(withToken(ctx, c.admin), &labv1.FollowRequest{})
	if err == nil {
		_, err = fst.Recv()
	}
	wantCode(t, "admin Follow", err, codes.PermissionDenied, "only labnet nodes")
}

func TestForwardContext(t *testing.T) {
	ctx := context.Background()
	if got := ForwardContext(ctx); got != ctx {
		t.Error("ForwardContext without a principal changed ctx")
	}
	nctx := NewContext(ctx, &Principal{Node: "n1"})
	if _, ok := metadata.FromOutgoingContext(ForwardContext(nctx)); ok {
		t.Error("a node principal forwards metadata")
	}
	in := metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer secret"))
	uctx := ForwardContext(NewContext(in, &Principal{User: "alice", Role: Student, TokenID: "abcdefghij"}))
	uctx = ForwardContext(uctx) // once is enough
	md, _ := metadata.FromOutgoingContext(uctx)
	if got := md.Get(ForwardedUserKey); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("forwarded user = %q", got)
	}
	if got := md.Get(ForwardedTokenKey); !slices.Equal(got, []string{"abcdefghij"}) {
		t.Errorf("forwarded token = %q", got)
	}
	if got := md.Get("authorization"); len(got) != 0 {
		t.Errorf("authorization forwarded: %q", got)
	}
}

func TestAuditAndCounts(t *testing.T) {
	c := newClassroom(t)
	conn := c.labConn("")
	ctx := withToken(ctxT(t), c.alice)
	_ = calls(conn, "a")["get"](ctx)    // a read that succeeds: not logged
	_ = calls(conn, "a")["delete"](ctx) // a write: logged
	_ = calls(conn, "b")["delete"](ctx) // denied: logged
	_ = calls(conn, "a")["get"](ctxT(t))
	log := c.logBuf.String()
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) != 3 {
		t.Fatalf("audit log has %d lines, want 3:\n%s", len(lines), log)
	}
	for i, want := range [][]string{
		{`msg="api call"`, "principal=alice", "method=/lab.v1.LabService/DeleteHost", "resource=labs/a/hosts/h1", "outcome=ok"},
		{`msg="api call denied"`, "principal=alice", "resource=labs/b/hosts/h1", "outcome=denied", "owned by bob"},
		{`msg="api call denied"`, "principal=anonymous", "method=/lab.v1.LabService/GetHost", "outcome=unauthenticated", "peer="},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("audit line %d lacks %s: %s", i, w, lines[i])
			}
		}
	}
	got := map[string]uint64{}
	for cc := range c.ic.Calls {
		got[cc.Method+" "+cc.Outcome] = cc.Count
	}
	for k, n := range map[string]uint64{
		"/lab.v1.LabService/GetHost ok":              1,
		"/lab.v1.LabService/GetHost unauthenticated": 1,
		"/lab.v1.LabService/GetHost denied":          0,
		"/lab.v1.LabService/DeleteHost ok":           1,
		"/lab.v1.LabService/DeleteHost denied":       1,
		"/lab.v1.LabService/DeleteHost error":        0,
	} {
		if v, ok := got[k]; !ok || v != n {
			t.Errorf("calls[%s] = %d (%v), want %d", k, v, ok, n)
		}
	}
}
