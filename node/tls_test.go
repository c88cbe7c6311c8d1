package node

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
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

// TestMemberEnrols: a member of a cluster with a cluster key enrols with
// the control node that holds the CA (its certificate names it and its
// address and is from that CA, and it says so in gossip).
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
