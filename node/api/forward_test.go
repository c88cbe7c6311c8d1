package api_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/api"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestForwardToUnreachableNode: when the node that runs a host cannot be
// reached, the error names that node, not the labd the client called
// (whose transport error it would otherwise look like).
func TestForwardToUnreachableNode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	e := newEnv(t, false, func(c *api.Config) {
		c.Peer = func(string) (grpc.ClientConnInterface, error) {
			return grpc.NewClient(dead, grpc.WithTransportCredentials(insecure.NewCredentials()))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	topo := demo()
	for _, h := range topo.Hosts {
		h.Node = "n2"
	}
	e.apply(t, topo)
	check := func(what string, err error) {
		t.Helper()
		s := status.Convert(err)
		if s.Code() != codes.Unavailable || !strings.HasPrefix(s.Message(), "node n2 cannot be reached from here: ") || strings.Contains(s.Message(), "connection error") {
			t.Errorf("%s: %v; want Unavailable naming node n2", what, err)
		}
	}
	_, err = e.live.GetHostStatus(ctx, &labv1.GetHostStatusRequest{Name: "labs/demo/hosts/h1"})
	check("status", err)
	ps, err := e.live.Ping(ctx, &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "10.0.2.1", Count: 1})
	if err == nil {
		_, err = ps.Recv()
	}
	check("ping", err)
	cs, err := e.capt.Capture(ctx, &labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"h1"}})
	if err == nil {
		_, err = cs.Recv()
	}
	check("capture", err)
}

// TestForwardCarriesUser: each of the three ways a call travels to
// another node (a write to the leader, a live call and a capture to the
// node that runs the host) names the caller in labnet-forwarded-user
// (which the other node believes only from a node's certificate), and
// never passes on the caller's own credentials.
func TestForwardCarriesUser(t *testing.T) {
	remote := newEnv(t, false)
	dial := func(string) (grpc.ClientConnInterface, error) {
		return grpc.NewClient(remote.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	front := newEnv(t, false, func(c *api.Config) { c.Peer = dial })
	follower := newEnv(t, false, func(c *api.Config) {
		c.Writer = notLeaderWriter{"leader"}
		c.Peer = dial
	})
	topo := demo()
	for _, h := range topo.Hosts {
		h.Node = "n2"
	}
	front.apply(t, topo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	actx := metadata.AppendToOutgoingContext(as(ctx, alice), "authorization", "Bearer lnt_secret")

	// A write, forwarded to the leader, is made there as alice: her lab.
	if _, err := follower.lab.Apply(actx, &labv1.ApplyRequest{Topology: demo()}); err != nil {
		t.Fatalf("forwarded apply: %v", err)
	}
	if l := remote.getLab(t, "demo"); l.Owner != "alice" {
		t.Errorf("lab applied through a follower is owned by %q, want alice", l.Owner)
	}
	// A live call and a capture, forwarded to the node that runs h1 (which
	// has no such host: only what arrives matters here).
	_, _ = front.live.GetHostStatus(actx, &labv1.GetHostStatusRequest{Name: "labs/demo/hosts/h1"})
	if cs, err := front.capt.Capture(actx, &labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"h1"}}); err == nil {
		_, _ = cs.Recv()
	}
	for _, m := range []string{"/lab.v1.LabService/Apply", "/lab.v1.LiveService/GetHostStatus", "/lab.v1.CaptureService/Capture"} {
		got := remote.auth.callsTo(m)
		if len(got) != 1 {
			t.Errorf("%s: %d calls arrived, want 1", m, len(got))
			continue
		}
		md := got[0]
		if u := md.Get("labnet-forwarded-user"); len(u) != 1 || u[0] != "alice" {
			t.Errorf("%s: labnet-forwarded-user %q, want alice", m, u)
		}
		if tok := md.Get("labnet-forwarded-token"); len(tok) != 1 || tok[0] != alice.TokenID {
			t.Errorf("%s: labnet-forwarded-token %q, want %s", m, tok, alice.TokenID)
		}
		if by := md.Get("labnet-forwarded-by"); len(by) != 1 || by[0] != testNode {
			t.Errorf("%s: labnet-forwarded-by %q, want %s", m, by, testNode)
		}
		if a := md.Get("authorization"); len(a) != 0 {
			t.Errorf("%s: the caller's authorization %q was passed on", m, a)
		}
		if p := md.Get(testPrincipalKey); len(p) != 0 {
			t.Errorf("%s: the caller's metadata was passed on", m)
		}
	}

	// Without a principal (no interceptor), nobody is named.
	_, _ = front.live.GetHostStatus(ctx, &labv1.GetHostStatusRequest{Name: "labs/demo/hosts/h2"})
	if got := remote.auth.callsTo("/lab.v1.LiveService/GetHostStatus"); len(got) != 2 || len(got[1].Get("labnet-forwarded-user")) != 0 {
		t.Errorf("a call without a principal was forwarded naming a user: %v", got)
	}
}

// TestMemberForwardCarriesBearer: a member names no user (other nodes
// believe a user's name only from a control node): each of the three
// ways a call travels passes on the caller's own bearer token, and a
// call that came without one is not passed on.
func TestMemberForwardCarriesBearer(t *testing.T) {
	remote := newEnv(t, false)
	dial := func(string) (grpc.ClientConnInterface, error) {
		return grpc.NewClient(remote.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	member := func(c *api.Config) { c.Member = func() bool { return true } }
	front := newEnv(t, false, member, func(c *api.Config) { c.Peer = dial })
	follower := newEnv(t, false, member, func(c *api.Config) {
		c.Writer = notLeaderWriter{"leader"}
		c.Peer = dial
	})
	topo := demo()
	for _, h := range topo.Hosts {
		h.Node = "n2"
	}
	front.apply(t, topo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	actx := metadata.AppendToOutgoingContext(as(ctx, alice), "authorization", "Bearer lnt_secret")

	if _, err := follower.lab.Apply(actx, &labv1.ApplyRequest{Topology: demo()}); err != nil {
		t.Fatalf("forwarded apply: %v", err)
	}
	_, _ = front.live.GetHostStatus(actx, &labv1.GetHostStatusRequest{Name: "labs/demo/hosts/h1"})
	if cs, err := front.capt.Capture(actx, &labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"h1"}}); err == nil {
		_, _ = cs.Recv()
	}
	for _, m := range []string{"/lab.v1.LabService/Apply", "/lab.v1.LiveService/GetHostStatus", "/lab.v1.CaptureService/Capture"} {
		got := remote.auth.callsTo(m)
		if len(got) != 1 {
			t.Errorf("%s: %d calls arrived, want 1", m, len(got))
			continue
		}
		md := got[0]
		if a := md.Get("authorization"); len(a) != 1 || a[0] != "Bearer lnt_secret" {
			t.Errorf("%s: authorization %q, want the caller's", m, a)
		}
		for _, k := range []string{"labnet-forwarded-user", "labnet-forwarded-token"} {
			if v := md.Get(k); len(v) != 0 {
				t.Errorf("%s: a member sent %s %q", m, k, v)
			}
		}
		if by := md.Get("labnet-forwarded-by"); len(by) != 1 || by[0] != testNode {
			t.Errorf("%s: labnet-forwarded-by %q, want %s", m, by, testNode)
		}
	}

	// A call for alice that came without her token (a control node
	// forwarded it here) goes no further, with a clear error.
	_, err := front.live.GetHostStatus(as(ctx, alice), &labv1.GetHostStatusRequest{Name: "labs/demo/hosts/h1"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "member") {
		t.Errorf("member forwards a call without a token: %v", err)
	}
	_, err = follower.lab.Apply(as(ctx, alice), &labv1.ApplyRequest{Topology: demo()})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("member forwards a write without a token: %v", err)
	}
	if got := remote.auth.callsTo("/lab.v1.LiveService/GetHostStatus"); len(got) != 1 {
		t.Errorf("%d live calls arrived, want still 1", len(got))
	}
}

// kindsOf is a membership of alive nodes with kinds; leader leads.
type kindsOf struct {
	kinds  map[string]string
	leader string
}

func (m kindsOf) Nodes() []*labv1.Node {
	var out []*labv1.Node
	for n, k := range m.kinds {
		out = append(out, &labv1.Node{Name: "nodes/" + n, State: labv1.NodeState_NODE_STATE_ALIVE, Kind: k, Leader: n == m.leader})
	}
	return out
}

func (kindsOf) Watch() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }

// TestMemberRelaysThroughControl: a member never hands a user's token to
// another member (whoever has root there could keep it): a live call or
// a capture for a host on another member goes to the leader, a control
// node, as not yet forwarded, so that it passes the call on naming the
// user; for a host on a control node, the member calls that node itself.
// With no control node alive, the call fails saying why.
func TestMemberRelaysThroughControl(t *testing.T) {
	remote := newEnv(t, false)
	var mu sync.Mutex
	var dialled []string
	dial := func(node string) (grpc.ClientConnInterface, error) {
		mu.Lock()
		dialled = append(dialled, node)
		mu.Unlock()
		return grpc.NewClient(remote.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	members := kindsOf{kinds: map[string]string{testNode: "member", "bob-laptop": "member", "teacher": "control", "c2": "control"}, leader: "teacher"}
	front := newEnv(t, false, func(c *api.Config) {
		c.Member = func() bool { return true }
		c.Peer = dial
		c.Members = members
	})
	topo := demo()
	for _, h := range topo.Hosts {
		h.Node = "bob-laptop"
	}
	front.apply(t, topo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	actx := metadata.AppendToOutgoingContext(as(ctx, alice), "authorization", "Bearer lnt_secret")
	_, _ = front.live.GetHostStatus(actx, &labv1.GetHostStatusRequest{Name: "labs/demo/hosts/h1"})
	if cs, err := front.capt.Capture(actx, &labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"h1"}}); err == nil {
		_, _ = cs.Recv()
	}
	mu.Lock()
	if strings.Join(dialled, " ") != "teacher teacher" {
		t.Errorf("dialled %q for a host on another member; want the leader, twice", dialled)
	}
	dialled = nil
	mu.Unlock()
	for _, m := range []string{"/lab.v1.LiveService/GetHostStatus", "/lab.v1.CaptureService/Capture"} {
		got := remote.auth.callsTo(m)
		if len(got) != 1 {
			t.Fatalf("%s: %d calls arrived, want 1", m, len(got))
		}
		if by := got[0].Get("labnet-forwarded-by"); len(by) != 0 {
			t.Errorf("%s: relayed as forwarded by %q: the control node could not pass it on", m, by)
		}
		if a := got[0].Get("authorization"); len(a) != 1 || a[0] != "Bearer lnt_secret" {
			t.Errorf("%s: authorization %q, want the caller's, to the control node", m, a)
		}
	}

	// A host on a control node: called directly.
	for _, h := range topo.Hosts {
		h.Node = "c2"
	}
	front.apply(t, topo)
	_, _ = front.live.GetHostStatus(actx, &labv1.GetHostStatusRequest{Name: "labs/demo/hosts/h1"})
	mu.Lock()
	if strings.Join(dialled, " ") != "c2" {
		t.Errorf("dialled %q for a host on a control node; want c2", dialled)
	}
	mu.Unlock()

	// No control node alive: a clear Unavailable.
	lonely := newEnv(t, false, func(c *api.Config) {
		c.Member = func() bool { return true }
		c.Peer = dial
		c.Members = kindsOf{kinds: map[string]string{testNode: "member", "bob-laptop": "member"}}
	})
	for _, h := range topo.Hosts {
		h.Node = "bob-laptop"
	}
	lonely.apply(t, topo)
	_, err := lonely.live.GetHostStatus(actx, &labv1.GetHostStatusRequest{Name: "labs/demo/hosts/h1"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "no control node is alive") {
		t.Errorf("relay with no control node: %v", err)
	}
}
