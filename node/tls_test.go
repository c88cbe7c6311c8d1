package node

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
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

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestPlaintextAPIRefused: --tls=false on an API that is not on loopback
// is refused before anything is bound, in one line that says what to do.
func TestPlaintextAPIRefused(t *testing.T) {
	off := false
	cfg := Config{Control: true, Name: "p", DataDir: t.TempDir(), API: "192.0.2.1:7700", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0", Key: []byte("k"), TLS: &off}
	_, err := New(cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "--tls=false") || !strings.Contains(err.Error(), "drop --tls=false") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("New: %v, want one line refusing --tls=false", err)
	}
}

// TestTLSOnlyAPI: a labd with --tls on 127.0.0.x serves TLS with a
// certificate from its CA naming its address; without a token only
// health answers; plaintext is refused; the admin's token from
// admin.token (0600) works.
func TestTLSOnlyAPI(t *testing.T) {
	on := true
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	maddr := ml.Addr().String()
	ml.Close()
	cfg := Config{Control: true, Name: "tls1", DataDir: t.TempDir(), API: "127.0.0.2:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0", TLS: &on, Metrics: maddr}
	d, _ := runDaemon(t, cfg, slog.New(slog.DiscardHandler))
	token := adminToken(t, d)
	if fi, err := os.Stat(filepath.Join(cfg.DataDir, adminTokenFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v %v, want mode 0600", fi.Mode(), err)
	}
	ca, err := auth.LoadCACert(filepath.Join(cfg.DataDir, auth.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	addr := d.api.lis.Addr().String()
	dial := func(opts ...grpc.DialOption) *grpc.ClientConn {
		c, err := grpc.NewClient(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The server's name is checked: the certificate names 127.0.0.2.
	anon := dial(grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(pool, "")))
	if r, err := healthpb.NewHealthClient(anon).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health over TLS without a token: %v %v", r, err)
	}
	_, err = labv1.NewNodeServiceClient(anon).ListNodes(ctx, &labv1.ListNodesRequest{})
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "labctl login") {
		t.Errorf("ListNodes without a token: %v, want Unauthenticated saying how to log in", err)
	}
	_, err = labv1.NewLabServiceClient(anon).CreateLab(ctx, &labv1.CreateLabRequest{LabId: "x", Lab: &labv1.Lab{}})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("CreateLab without a token: %v, want Unauthenticated", err)
	}

	plain := dial(grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(token)))
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	defer pcancel()
	if _, err := healthpb.NewHealthClient(plain).Check(pctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("plaintext answered on a --tls API")
	}

	admin := dial(grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(pool, "")), grpc.WithPerRPCCredentials(bearer(token)))
	if _, err := labv1.NewLabServiceClient(admin).CreateLab(ctx, &labv1.CreateLabRequest{LabId: "x", Lab: &labv1.Lab{}}); err != nil {
		t.Fatalf("CreateLab with the admin's token: %v", err)
	}
	nodes, err := labv1.NewNodeServiceClient(admin).ListNodes(ctx, &labv1.ListNodesRequest{})
	if err != nil || len(nodes.Nodes) != 1 {
		t.Fatalf("ListNodes with the admin's token: %v %v", nodes, err)
	}

	// The calls are counted by outcome.
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`labnet_api_calls_total{method="/lab.v1.NodeService/ListNodes",outcome="unauthenticated"} 1`,
		`labnet_api_calls_total{method="/lab.v1.NodeService/ListNodes",outcome="ok"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestMemberEnrols: a member of a cluster with a cluster key enrols with
// the control node that holds the CA (its certificate names it and its
// address and is from that CA, and it says so in gossip); a call a
// student makes through the member reaches the control node as that
// student, and the forged forwarding metadata of a caller without a
// node's certificate is refused.
func TestMemberEnrols(t *testing.T) {
	key := []byte("class key")
	seed := gossipPort(t)
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true, Key: key}, slog.New(slog.DiscardHandler))
	var logs syncBuffer
	mdir := t.TempDir()
	m1, _ := runDaemon(t, Config{Name: "m1", DataDir: mdir, API: "127.0.0.3:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0", Join: []string{seed}, Key: key}, slog.New(slog.NewTextHandler(&logs, nil)))
	waitUntil(t, "m1 ready", func() bool { return strings.Contains(logs.String(), "labd ready") })
	if !strings.Contains(logs.String(), "enrolled") {
		t.Errorf("m1's log does not say it enrolled:\n%s", logs.String())
	}
	// Enroll handed it the gossip keys (the cluster key's), kept for its
	// next start.
	if kept, err := loadGossipKeys(mdir); err != nil || !sameKeys(kept, [][]byte{cluster.KeyOf(key)}) {
		t.Errorf("m1's %s: %x, %v; want the cluster key's", gossipKeysFile, kept, err)
	}
	_, cert, err := auth.LoadNodeCert(mdir)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := auth.LoadCACert(filepath.Join(mdir, auth.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if auth.CAHash(ca) != c1.pki.caHash() || m1.pki.ca != nil {
		t.Errorf("m1's CA %s, c1's %s; m1 holds the CA's key: %v", auth.CAHash(ca), c1.pki.caHash(), m1.pki.ca != nil)
	}
	if why := auth.RenewReason(cert, ca, "m1", time.Now(), []net.IP{net.ParseIP("127.0.0.3")}, nil); why != "" {
		t.Errorf("m1's certificate: %s", why)
	}
	waitUntil(t, "m1's CA hash in gossip", func() bool {
		m, ok := c1.control.member("m1")
		return ok && m.Meta.CAHash == c1.pki.caHash() && !m.Meta.CAKey
	})

	// Student alice, made on the control plane.
	token, id, hash := identity.NewToken()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c1.control.Update(ctx, func(tx *store.Tx) error {
		if err := lab.PutUser(tx, lab.User{ID: "alice", Role: auth.Student}); err != nil {
			return err
		}
		return lab.PutToken(tx, auth.Token{ID: id, User: "alice", Kind: auth.Session, Hash: hash})
	}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "m1 to hold alice's token", func() bool {
		_, ok := lab.GetToken(lab.StoreGetter{St: m1.store}, id)
		return ok
	})
	conn, err := grpc.NewClient(m1.api.lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(token)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := labv1.NewLabServiceClient(conn).CreateLab(ctx, &labv1.CreateLabRequest{LabId: "mine", Lab: &labv1.Lab{}}); err != nil {
		t.Fatalf("alice's CreateLab through m1: %v", err)
	}
	if info, ok := lab.NewDirectory(c1.store).Lab("mine"); !ok || info.Owner != "alice" {
		t.Errorf("the lab alice made through m1: %+v %v, want owned by alice", info, ok)
	}

	// A client that sends the forwarding metadata itself is no node.
	forged, err := grpc.NewClient(c1.api.lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(token)))
	if err != nil {
		t.Fatal(err)
	}
	defer forged.Close()
	fctx := metadata.AppendToOutgoingContext(ctx, "labnet-forwarded-user", "admin", "labnet-forwarded-by", "m1")
	if _, err := labv1.NewLabServiceClient(forged).DeleteLab(fctx, &labv1.DeleteLabRequest{Name: "labs/mine"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("DeleteLab with forged forwarding metadata: %v, want PermissionDenied", err)
	}
}

// TestEnrollRefused: Enroll on the node that holds the CA refuses a
// request without the cluster key's proof; a node without the CA's key
// refuses every request.
func TestEnrollRefused(t *testing.T) {
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0", Control: true, Key: []byte("k")}, slog.New(slog.DiscardHandler))
	conn, err := grpc.NewClient(c1.api.lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(auth.PinnedTLS(c1.pki.caHash(), nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key, err := auth.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := auth.NewNodeCSR(key, "intruder", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, proof := range [][]byte{nil, auth.EnrollProof([]byte("other key"), csr, c1.pki.ca.Cert.Raw)} {
		_, err = labv1.NewControlServiceClient(conn).Enroll(ctx, &labv1.EnrollRequest{Node: "intruder", Csr: csr, Proof: proof}, grpc.WaitForReady(true))
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "--cluster-key") {
			t.Errorf("Enroll with proof %x: %v, want PermissionDenied naming the cluster key", proof, err)
		}
	}
}
