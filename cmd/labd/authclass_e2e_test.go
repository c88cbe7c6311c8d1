package main_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// authNode is one labd of the auth tests, reached over TLS verified
// against the cluster CA.
type authNode struct {
	name string
	d    *labd
	ca   *x509.CertPool
}

// tlsBearer is per-RPC credentials carrying a token, over TLS only; none
// when empty.
type tlsBearer string

func (b tlsBearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (tlsBearer) RequireTransportSecurity() bool { return true }

// conn dials n over TLS with token (none when empty) and extra options.
func (n *authNode) conn(t testing.TB, token string, extra ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	host := strings.Split(n.d.api, ":")[0]
	creds := credentials.NewTLS(&tls.Config{RootCAs: n.ca, ServerName: host, MinVersion: tls.VersionTLS13})
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(tlsBearer(token))}, extra...)
	c, err := grpc.NewClient(n.d.api, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// code is err's gRPC code.
func code(err error) codes.Code { return status.Code(err) }

// authCluster starts a control node "teacher" and two members
// "alice-laptop" and "bob-laptop" on 127.0.0.41-43, every API over TLS
// (as on a classroom network), members enrolled with the cluster key.
func authCluster(t *testing.T) (nodes []*authNode, admin string) {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "class.key")
	if err := os.WriteFile(key, []byte("the passphrase on the board"), 0o600); err != nil {
		t.Fatal(err)
	}
	seed := "127.0.0.41:" + freePort(t, "127.0.0.41")
	for i, name := range []string{"teacher", "alice-laptop", "bob-laptop"} {
		ip := fmt.Sprintf("127.0.0.%d", 41+i)
		gossip := seed
		args := []string{"--name", name, "--tls", "--cluster-key-file", key,
			"--api", ip + ":0", "--overlay", ip + ":0"}
		if i > 0 {
			gossip = ip + ":" + freePort(t, ip)
			args = append(args, "--join", seed)
		}
		d := startLabdArgs(t, filepath.Join(dir, name), append(args, "--gossip", gossip)...)
		nodes = append(nodes, &authNode{name: name, d: d})
	}
	pem, err := os.ReadFile(filepath.Join(dir, "teacher", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "teacher", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "teacher", "admin.token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v, mode %v; want 0600", err, fi.Mode())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("ca.crt: no certificate")
	}
	for _, n := range nodes {
		n.ca = pool
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("%s's log (the end):\n%s", n.name, lastLines(n.d.log.String(), 80))
			}
		}
	})
	admin = strings.TrimSpace(string(tok))
	// Every node alive, as every node sees it.
	for _, n := range nodes {
		nc := labv1.NewNodeServiceClient(n.conn(t, admin))
		waitFor(t, 30*time.Second, n.name+" sees three nodes alive", func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			resp, err := nc.ListNodes(ctx, &labv1.ListNodesRequest{})
			if err != nil {
				return false, err.Error()
			}
			alive := 0
			for _, m := range resp.Nodes {
				if m.State == labv1.NodeState_NODE_STATE_ALIVE {
					alive++
				}
			}
			return alive == 3, fmt.Sprint(resp.Nodes)
		})
	}
	return nodes, admin
}

// token makes user (with role, when the user is new) a session token
// through admin's connection.
func token(t *testing.T, ac labv1.AuthServiceClient, user string, role labv1.Role, ttl time.Duration) (secret, name string) {
	t.Helper()
	ctx := context.Background()
	if role != labv1.Role_ROLE_UNSPECIFIED {
		if _, err := ac.CreateUser(ctx, &labv1.CreateUserRequest{UserId: user, User: &labv1.User{Role: role}}); err != nil {
			t.Fatalf("create user %s: %v", user, err)
		}
	}
	req := &labv1.CreateTokenRequest{Parent: "users/" + user}
	if ttl > 0 {
		req.Ttl = durationpb.New(ttl)
	}
	resp, err := ac.CreateToken(ctx, req)
	if err != nil {
		t.Fatalf("token for %s: %v", user, err)
	}
	return resp.Secret, resp.Token.Name
}

// studentLab is lab id with one network and hosts h1 (on node on) and h2
// (on the teacher's node).
func studentLab(id, on string, third int) *labv1.Topology {
	return &labv1.Topology{
		Lab:      id,
		Networks: []*labv1.Network{{Name: "lan", Ipv4: fmt.Sprintf("10.%d.0.0/24", third)}},
		Hosts: []*labv1.Host{
			{Name: "h1", Node: on, Interfaces: []*labv1.Interface{{Network: "lan"}}},
			{Name: "h2", Node: "teacher", Interfaces: []*labv1.Interface{{Network: "lan"}}},
		},
	}
}

// pingOnce pings dst from host through c; the error of the stream, or
// nil once a reply came back.
func pingOnce(c *grpc.ClientConn, host, dst string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := labv1.NewLiveServiceClient(c).Ping(ctx, &labv1.PingRequest{Host: host, Destination: dst, Count: 1, Timeout: durationpb.New(2 * time.Second)})
	if err != nil {
		return err
	}
	for {
		r, err := s.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("no reply")
			}
			return err
		}
		if r.GetReply() != nil {
			return nil
		}
	}
}

// firstRecv opens a server stream and returns the error of its first
// message (nil when one came).
func firstRecv[T any](open func(ctx context.Context) (interface{ Recv() (T, error) }, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := open(ctx)
	if err != nil {
		return err
	}
	_, err = s.Recv()
	return err
}

// TestAuthClassroom is issue 13's "done when", with three labd processes
// serving TLS on 127.0.0.x: without a token only health answers; student
// alice can do everything in her own lab and nothing in bob's, through
// every node; a viewer reads and does not write; an admin does all; a
// revoked token fails on every node and an expired one fails; forwarded
// identity cannot be forged by a client.
func TestAuthClassroom(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three labd processes")
	}
	nodes, admin := authCluster(t)
	teacher := nodes[0]
	ctx := context.Background()
	ac := labv1.NewAuthServiceClient(teacher.conn(t, admin))

	// Without a token: health answers, nothing else does, on every node;
	// plaintext is refused on a TLS API.
	for _, n := range nodes {
		c := n.conn(t, "")
		h, err := healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s: health without a token: %v %v", n.name, h, err)
		}
		if _, err := labv1.NewLabServiceClient(c).ListLabs(ctx, &labv1.ListLabsRequest{}); code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "login") {
			t.Fatalf("%s: ListLabs without a token: %v; want Unauthenticated saying how to log in", n.name, err)
		}
		if _, err := labv1.NewNodeServiceClient(c).ListNodes(ctx, &labv1.ListNodesRequest{}); code(err) != codes.Unauthenticated {
			t.Fatalf("%s: ListNodes without a token: %v", n.name, err)
		}
		plain, err := grpc.NewClient(n.d.api, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = healthpb.NewHealthClient(plain).Check(pctx, &healthpb.HealthCheckRequest{})
		cancel()
		plain.Close()
		if err == nil {
			t.Fatalf("%s: a plaintext call to a TLS API was answered", n.name)
		}
	}

	alice, _ := token(t, ac, "alice", labv1.Role_ROLE_STUDENT, 0)
	bob, _ := token(t, ac, "bob", labv1.Role_ROLE_STUDENT, 0)
	vera, _ := token(t, ac, "vera", labv1.Role_ROLE_VIEWER, 0)

	// Each student applies their own lab through their own laptop's labd.
	for _, s := range []struct {
		tok, lab, node string
		n              *authNode
		third          int
	}{{alice, "alice-lab", "alice-laptop", nodes[1], 1}, {bob, "bob-lab", "bob-laptop", nodes[2], 2}} {
		if _, err := labv1.NewLabServiceClient(s.n.conn(t, s.tok)).Apply(ctx, &labv1.ApplyRequest{Topology: studentLab(s.lab, s.node, s.third)}); err != nil {
			t.Fatalf("%s applies %s: %v", s.node, s.lab, err)
		}
	}
	lab, err := labv1.NewLabServiceClient(teacher.conn(t, admin)).GetLab(ctx, &labv1.GetLabRequest{Name: "labs/alice-lab"})
	if err != nil || lab.Lab.Owner != "alice" {
		t.Fatalf("alice-lab: %v %v; want owner alice", lab, err)
	}
	// The addresses apply gave the hosts.
	addr := func(host string) string {
		t.Helper()
		h, err := labv1.NewLabServiceClient(teacher.conn(t, admin)).GetHost(ctx, &labv1.GetHostRequest{Name: host})
		if err != nil || len(h.GetHost().GetInterfaces()) == 0 {
			t.Fatalf("%s: %v %v", host, h, err)
		}
		return strings.Split(h.Host.Interfaces[0].Ipv4, "/")[0]
	}
	aliceH1, aliceH2, bobH1 := addr("labs/alice-lab/hosts/h1"), addr("labs/alice-lab/hosts/h2"), addr("labs/bob-lab/hosts/h1")
	// Wait until alice's hosts answer through her labd.
	aliceOwn := nodes[1].conn(t, alice)
	waitFor(t, 30*time.Second, "alice pings in her lab", func() (bool, string) {
		err := pingOnce(aliceOwn, "labs/alice-lab/hosts/h1", aliceH2)
		return err == nil, fmt.Sprint(err)
	})

	for _, n := range nodes {
		ca := n.conn(t, alice)
		lc, live, sc := labv1.NewLabServiceClient(ca), labv1.NewLiveServiceClient(ca), labv1.NewSocketServiceClient(ca)
		cc := labv1.NewCaptureServiceClient(ca)
		denied := func(what string, err error) {
			t.Helper()
			if code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "bob-lab") {
				t.Errorf("%s: alice %s in bob's lab: %v; want PermissionDenied naming it", n.name, what, err)
			}
		}
		_, err := lc.GetLab(ctx, &labv1.GetLabRequest{Name: "labs/bob-lab"})
		denied("gets", err)
		_, err = lc.DeleteHost(ctx, &labv1.DeleteHostRequest{Name: "labs/bob-lab/hosts/h1"})
		denied("deletes a host", err)
		_, err = lc.DeleteLab(ctx, &labv1.DeleteLabRequest{Name: "labs/bob-lab"})
		denied("deletes the lab", err)
		_, err = lc.UpdateLab(ctx, &labv1.UpdateLabRequest{Lab: &labv1.Lab{Name: "labs/bob-lab", Owner: "alice"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"owner"}}})
		denied("takes the lab", err)
		_, err = lc.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/bob-lab/hosts/h1", Interface: "eth0", Impair: &labv1.Impairment{LossPercent: 100}})
		denied("impairs", err)
		_, err = lc.Apply(ctx, &labv1.ApplyRequest{Topology: studentLab("bob-lab", "alice-laptop", 2)})
		denied("re-applies", err)
		denied("pings", pingOnce(ca, "labs/bob-lab/hosts/h1", bobH1))
		denied("captures", firstRecv(func(ctx context.Context) (interface {
			Recv() (*labv1.CaptureResponse, error)
		}, error) {
			return cc.Capture(ctx, &labv1.CaptureRequest{Lab: "labs/bob-lab", Targets: []string{"h1"}})
		}))
		denied("watches", firstRecv(func(ctx context.Context) (interface {
			Recv() (*labv1.WatchResponse, error)
		}, error) {
			return lc.Watch(ctx, &labv1.WatchRequest{Parent: "labs/bob-lab"})
		}))
		// Port-forward into bob's host: a socket stream.
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ds, err := sc.Dial(dctx)
		if err == nil {
			err = ds.Send(&labv1.DialRequest{Event: &labv1.DialRequest_Open{Open: &labv1.DialOpen{Host: "labs/bob-lab/hosts/h1", Address: bobH1 + ":80"}}})
			if err == nil {
				_, err = ds.Recv()
			}
		}
		cancel()
		denied("port-forwards", err)
		// What alice lists and watches is hers.
		ll, err := lc.ListLabs(ctx, &labv1.ListLabsRequest{})
		if err != nil || len(ll.Labs) != 1 || ll.Labs[0].Name != "labs/alice-lab" {
			t.Errorf("%s: alice lists %v (%v); want only alice-lab", n.name, ll, err)
		}
		hl, err := lc.ListHosts(ctx, &labv1.ListHostsRequest{Parent: "labs/-"})
		for _, h := range hl.GetHosts() {
			if !strings.HasPrefix(h.Name, "labs/alice-lab/") {
				t.Errorf("%s: alice lists host %s", n.name, h.Name)
			}
		}
		if err != nil || len(hl.GetHosts()) != 2 {
			t.Errorf("%s: alice lists hosts %v (%v); want her two", n.name, hl, err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		ws, err := lc.Watch(wctx, &labv1.WatchRequest{Parent: "labs/-"})
		for err == nil {
			var ev *labv1.WatchResponse
			if ev, err = ws.Recv(); err != nil {
				break
			}
			if ev.Type == labv1.WatchEventType_WATCH_EVENT_TYPE_SYNCED {
				break
			}
			if strings.Contains(ev.Name, "bob-lab") {
				t.Errorf("%s: alice's watch shows %s", n.name, ev.Name)
			}
		}
		wcancel()
		if err != nil {
			t.Errorf("%s: alice watches labs/-: %v", n.name, err)
		}

		// In her own lab, through this node, she may do it all.
		if _, err := lc.GetLab(ctx, &labv1.GetLabRequest{Name: "labs/alice-lab"}); err != nil {
			t.Errorf("%s: alice gets her lab: %v", n.name, err)
		}
		if err := pingOnce(ca, "labs/alice-lab/hosts/h2", aliceH1); err != nil {
			t.Errorf("%s: alice pings from her host on the teacher's node: %v", n.name, err)
		}
		if err := firstRecv(func(ctx context.Context) (interface {
			Recv() (*labv1.CaptureResponse, error)
		}, error) {
			return cc.Capture(ctx, &labv1.CaptureRequest{Lab: "labs/alice-lab", Targets: []string{"h1"}})
		}); err != nil {
			t.Errorf("%s: alice captures in her lab: %v", n.name, err)
		}
		if _, err := lc.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/alice-lab/hosts/h1", Interface: "eth0", Impair: &labv1.Impairment{}}); err != nil {
			t.Errorf("%s: alice impairs her host: %v", n.name, err)
		}
		if _, err := live.GetHostStatus(ctx, &labv1.GetHostStatusRequest{Name: "labs/alice-lab/hosts/h1"}); err != nil {
			t.Errorf("%s: alice's host status: %v", n.name, err)
		}
	}

	// The viewer reads and does not write; the admin does everything.
	vc := labv1.NewLabServiceClient(nodes[1].conn(t, vera))
	if ll, err := vc.ListLabs(ctx, &labv1.ListLabsRequest{}); err != nil || len(ll.Labs) != 2 {
		t.Errorf("viewer lists %v (%v); want both labs", ll, err)
	}
	if _, err := vc.GetHost(ctx, &labv1.GetHostRequest{Name: "labs/bob-lab/hosts/h1"}); err != nil {
		t.Errorf("viewer gets bob's host: %v", err)
	}
	if _, err := vc.DeleteHost(ctx, &labv1.DeleteHostRequest{Name: "labs/bob-lab/hosts/h2"}); code(err) != codes.PermissionDenied {
		t.Errorf("viewer deletes a host: %v; want PermissionDenied", err)
	}
	if err := pingOnce(nodes[1].conn(t, vera), "labs/bob-lab/hosts/h1", bobH1); code(err) != codes.PermissionDenied {
		t.Errorf("viewer pings: %v; want PermissionDenied", err)
	}

	// A client cannot forge a forwarded call: not with alice's token, not
	// without one, not with a certificate of its own naming a node.
	forged := metadata.Pairs("labnet-forwarded-user", "admin", "labnet-forwarded-by", "teacher")
	for _, c := range []*grpc.ClientConn{nodes[2].conn(t, alice), nodes[2].conn(t, "")} {
		_, err := labv1.NewLabServiceClient(c).DeleteHost(metadata.NewOutgoingContext(ctx, forged), &labv1.DeleteHostRequest{Name: "labs/bob-lab/hosts/h1"})
		if c := code(err); c != codes.PermissionDenied && c != codes.Unauthenticated {
			t.Errorf("forged forwarded call: %v; want refused", err)
		}
	}
	rogue := selfSignedNode(t, "teacher")
	host := strings.Split(nodes[2].d.api, ":")[0]
	rc := nodes[2].conn(t, "", grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: nodes[2].ca, ServerName: host, Certificates: []tls.Certificate{rogue}})))
	if _, err := labv1.NewLabServiceClient(rc).DeleteHost(metadata.NewOutgoingContext(ctx, forged), &labv1.DeleteHostRequest{Name: "labs/bob-lab/hosts/h1"}); err == nil {
		t.Errorf("a self-signed node certificate forwarded a call")
	}
	if _, err := labv1.NewLabServiceClient(teacher.conn(t, admin)).GetHost(ctx, &labv1.GetHostRequest{Name: "labs/bob-lab/hosts/h1"}); err != nil {
		t.Fatalf("bob's host after the forgeries: %v", err)
	}
	// The admin deletes bob's host through alice's labd.
	if _, err := labv1.NewLabServiceClient(nodes[1].conn(t, admin)).DeleteHost(ctx, &labv1.DeleteHostRequest{Name: "labs/bob-lab/hosts/h2"}); err != nil {
		t.Errorf("admin deletes bob's host: %v", err)
	}

	// A class lab the teacher owns and shares, each student's host naming
	// its student as owner (examples/workshop.yaml's shape): alice operates
	// her host, through any node, and not bob's; she changes nothing of
	// the lab.
	class := &labv1.Topology{Lab: "class", Shared: true,
		Networks: []*labv1.Network{{Name: "core", Ipv4: "10.9.0.0/24"}},
		Hosts: []*labv1.Host{
			{Name: "alice", Node: "alice-laptop", Owner: "alice", Interfaces: []*labv1.Interface{{Network: "core", Ipv4: "10.9.0.10/24"}}},
			{Name: "bob", Node: "bob-laptop", Owner: "bob", Interfaces: []*labv1.Interface{{Network: "core", Ipv4: "10.9.0.20/24"}}},
		}}
	if _, err := labv1.NewLabServiceClient(teacher.conn(t, admin)).Apply(ctx, &labv1.ApplyRequest{Topology: class}); err != nil {
		t.Fatalf("the teacher applies the class lab: %v", err)
	}
	for _, n := range nodes {
		ca := n.conn(t, alice)
		lc := labv1.NewLabServiceClient(ca)
		waitFor(t, 30*time.Second, n.name+": alice pings bob from her host in the class lab", func() (bool, string) {
			err := pingOnce(ca, "labs/class/hosts/alice", "10.9.0.20")
			return err == nil, fmt.Sprint(err)
		})
		if _, err := lc.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/class/hosts/alice", Interface: "eth0", Impair: &labv1.Impairment{}}); err != nil {
			t.Errorf("%s: alice impairs her class host: %v", n.name, err)
		}
		if _, err := lc.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/class/hosts/bob", Interface: "eth0", Impair: &labv1.Impairment{LossPercent: 100}}); code(err) != codes.PermissionDenied {
			t.Errorf("%s: alice impairs bob's class host: %v; want PermissionDenied", n.name, err)
		}
		if err := pingOnce(ca, "labs/class/hosts/bob", "10.9.0.10"); code(err) != codes.PermissionDenied {
			t.Errorf("%s: alice pings from bob's class host: %v; want PermissionDenied", n.name, err)
		}
		if _, err := lc.DeleteHost(ctx, &labv1.DeleteHostRequest{Name: "labs/class/hosts/alice"}); code(err) != codes.PermissionDenied {
			t.Errorf("%s: alice deletes her class host: %v; want PermissionDenied (the teacher's lab)", n.name, err)
		}
		if _, err := lc.GetLab(ctx, &labv1.GetLabRequest{Name: "labs/class"}); err != nil {
			t.Errorf("%s: alice reads the shared class lab: %v", n.name, err)
		}
	}

	// A revoked token fails on every node; how long that takes is logged.
	extra, name := token(t, ac, "alice", labv1.Role_ROLE_UNSPECIFIED, 0)
	clients := map[string]labv1.LabServiceClient{}
	for _, n := range nodes {
		clients[n.name] = labv1.NewLabServiceClient(n.conn(t, extra))
		if _, err := clients[n.name].ListLabs(ctx, &labv1.ListLabsRequest{}); err != nil {
			t.Fatalf("%s: a new token: %v", n.name, err)
		}
	}
	if _, err := ac.RevokeToken(ctx, &labv1.RevokeTokenRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for _, n := range nodes {
		took := waitFor(t, 3*time.Second, n.name+" refuses the revoked token", func() (bool, string) {
			_, err := clients[n.name].ListLabs(ctx, &labv1.ListLabsRequest{})
			return code(err) == codes.Unauthenticated, fmt.Sprint(err)
		})
		t.Logf("%s refuses the revoked token %v after the revoke returned (%v of polling)", n.name, time.Since(revoked), took)
	}
	// An expired token fails.
	short, _ := token(t, ac, "alice", labv1.Role_ROLE_UNSPECIFIED, time.Second)
	time.Sleep(1500 * time.Millisecond)
	for _, n := range nodes {
		_, err := labv1.NewLabServiceClient(n.conn(t, short)).ListLabs(ctx, &labv1.ListLabsRequest{})
		if code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "expired") {
			t.Errorf("%s: an expired token: %v; want Unauthenticated saying it expired", n.name, err)
		}
	}
}

// selfSignedNode is a certificate naming node, signed by nobody the
// cluster trusts.
func selfSignedNode(t *testing.T, node string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: node},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:        nil,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestLabctlRefusesWrongPin: labctl login with a CA hash that is not the
// server's fails before sending the token, in one line; the right one
// saves a context that later commands use.
func TestLabctlRefusesWrongPin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a labd")
	}
	dir := t.TempDir()
	d := startLabdArgs(t, filepath.Join(dir, "data"), "--name", "solo", "--tls", "--api", "127.0.0.44:0", "--gossip", "127.0.0.44:0", "--overlay", "127.0.0.44:0")
	admin, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(filepath.Join(dir, "data", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(filepath.Join(binDir, "labctl"), args...)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "LABD_DATA="+filepath.Join(dir, "nothing-here"), "HOME="+dir)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errb.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), 0
	}
	wrong := "sha256:" + strings.Repeat("0", 64)
	_, errs, c := run("login", "--server", d.api, "--ca-hash", wrong, "--token", strings.TrimSpace(string(admin)))
	if c == 0 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "ca-hash") {
		t.Fatalf("login with a wrong pin: exit %d, stderr %q; want one line naming --ca-hash and a non-zero exit", c, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "config", "labctl", "config")); err == nil {
		t.Errorf("a refused login wrote a config")
	}
	right := caHashOfPEM(t, pemBytes)
	if out, errs, c := run("login", "--server", d.api, "--ca-hash", right, "--token", strings.TrimSpace(string(admin))); c != 0 {
		t.Fatalf("login with the right pin: exit %d\n%s%s", c, out, errs)
	}
	if out, errs, c := run("whoami"); c != 0 || !strings.Contains(out, "admin") {
		t.Fatalf("whoami after login: exit %d\n%s%s", c, out, errs)
	}

	// The admin hands a lab to a student and shares it; the student may
	// not hand it on.
	must := func(args ...string) string {
		t.Helper()
		out, errs, c := run(args...)
		if c != 0 {
			t.Fatalf("labctl %s: exit %d\n%s%s", strings.Join(args, " "), c, out, errs)
		}
		return out
	}
	must("apply", "-f", examples(t, "two-lans.yaml"))
	must("user", "add", "alice", "--role", "student")
	must("user", "add", "bob", "--role", "student")
	if out := must("lab", "chown", "demo", "alice"); !strings.Contains(out, "owned by alice") {
		t.Errorf("lab chown: %q", out)
	}
	must("lab", "share", "demo")
	if out := must("get", "labs"); !strings.Contains(out, "alice") {
		t.Errorf("get labs after chown:\n%s", out)
	}
	aliceToken := strings.TrimSpace(must("token", "create", "--user", "alice"))
	_, errs, c = run("--token", aliceToken, "lab", "chown", "demo", "bob")
	if c == 0 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "transfer") {
		t.Errorf("alice hands her lab on: exit %d, stderr %q; want one line refusing transfer", c, errs)
	}
	if out, errs, c := run("--token", aliceToken, "auth", "can-i", "delete", "lab/demo"); c != 0 || !strings.HasPrefix(out, "yes") {
		t.Errorf("alice can-i delete her lab: exit %d %q %q", c, out, errs)
	}
	if out, _, c := run("--token", aliceToken, "auth", "can-i", "transfer", "lab/demo"); c != 1 || !strings.HasPrefix(out, "no") {
		t.Errorf("alice can-i transfer her lab: exit %d %q; want no, exit 1", c, out)
	}
}

// caHashOfPEM is the pin of the CA in pemBytes: "sha256:" and the hex
// SHA-256 of its public key (kubeadm's format).
func caHashOfPEM(t *testing.T, pemBytes []byte) string {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		t.Fatal("ca.crt: not PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("sha256:%x", sha256.Sum256(c.RawSubjectPublicKeyInfo))
}
