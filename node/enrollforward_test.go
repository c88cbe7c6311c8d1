package node

import (
	"context"
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestEnrolAtCAHolderNotLeading: a control node that holds the CA (as a
// StatefulSet's pods all do) but does not lead answers Enroll as a write
// the API forwards: the call is replayed at the leader, which signs and
// records the identity; a renewal so forwarded keeps its proof (the
// certificate the caller presented to the CA holder).
func TestEnrolAtCAHolderNotLeading(t *testing.T) {
	key := []byte("class key")
	seed := gossipPort(t)
	dir1 := t.TempDir()
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: dir1, API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true, Key: key}, slog.New(slog.DiscardHandler))
	waitUntil(t, "c1 leads", c1.control.isLeader)
	c2, _ := runDaemon(t, Config{Name: "c2", DataDir: t.TempDir(), API: "127.0.0.2:0", Gossip: "127.0.0.2:0", Overlay: "127.0.0.2:0", Control: true, Key: key, Join: []string{seed},
		CACert: filepath.Join(dir1, auth.CACertFile), CAKey: filepath.Join(dir1, auth.CAKeyFile)}, slog.New(slog.DiscardHandler))
	waitUntil(t, "c2 serves with its certificate", c2.pki.hasCert)
	waitUntil(t, "c2 sees c1 alive", func() bool { _, ok := c2.control.member("c1"); return ok })
	if c2.control.isLeader() {
		t.Fatal("c2 leads")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	enrol := func(cert *tls.Certificate) (*tls.Certificate, error) {
		cfg := auth.PinnedTLS(c2.pki.caHash(), nil)
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		conn, err := grpc.NewClient(c2.api.lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		nkey, err := auth.NewNodeKey()
		if err != nil {
			t.Fatal(err)
		}
		csr, err := auth.NewNodeCSR(nkey, "m9", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return enrollKeyedCert(ctx, t, conn, &labv1.EnrollRequest{Node: "m9", Csr: csr, Proof: auth.EnrollProof(key, csr, c2.pki.ca.Cert.Raw)}, nkey)
	}
	start := time.Now()
	m9, err := enrol(nil)
	if err != nil {
		t.Fatalf("Enroll at c2, which holds the CA but does not lead: %v", err)
	}
	t.Logf("enrolled through c2 in %v", time.Since(start))
	id, ok := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "m9")
	if !ok || id.Serial != m9.Leaf.SerialNumber.Text(16) {
		t.Fatalf("m9's identity record at the leader: %+v %v; want serial %s", id, ok, m9.Leaf.SerialNumber.Text(16))
	}
	// The name is bound: without proof, refused; with m9's certificate,
	// renewed, at the leader (c2's replica may not hold the record yet:
	// then it is the leader that checks the proof c2 passes on).
	if _, err := enrol(nil); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a second enrolment of m9 without its certificate, through c2: %v; want PermissionDenied", err)
	}
	renewed, err := enrol(m9)
	if err != nil {
		t.Fatalf("renewal of m9 through c2: %v", err)
	}
	if id, _ := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "m9"); id.Serial != renewed.Leaf.SerialNumber.Text(16) {
		t.Errorf("m9's record after renewal names %s; want %s", id.Serial, renewed.Leaf.SerialNumber.Text(16))
	}
}
