package node

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestEnrolNameBound: with the cluster key, a node may not enrol under a
// name whose identity record names another certificate (the control
// node's, or a member's), unless it presents that certificate: a
// member whose certificate must be renewed (it moved to another address)
// enrols again with its own, and a rogue holding the key cannot take its
// name or the control node's.
func TestEnrolNameBound(t *testing.T) {
	key := []byte("class key")
	seed := gossipPort(t)
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true, Key: key}, slog.New(slog.DiscardHandler))
	mdir := t.TempDir()
	m1, stopM1 := runDaemon(t, Config{Name: "m1", DataDir: mdir, API: "127.0.0.3:0", Gossip: "127.0.0.3:0", Overlay: "127.0.0.3:0", Join: []string{seed}, Key: key}, slog.New(slog.DiscardHandler))
	waitUntil(t, "m1 enrolled", m1.pki.hasCert)
	waitUntil(t, "m1's and c1's identity records", func() bool {
		_, ok1 := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "m1")
		_, ok2 := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "c1")
		return ok1 && ok2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, name := range []string{"m1", "c1"} {
		err := enrollKeyed(ctx, t, c1, name, key, nil)
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "labctl node remove "+name) {
			t.Errorf("Enroll as %s with the cluster key: %v; want PermissionDenied telling to remove and invite", name, err)
		}
		if n := c1.enroll.refused.Count(name, "name_taken"); n != 1 {
			t.Errorf("name_taken refusals of %s: %d, want 1", name, n)
		}
	}
	// Another node's certificate is no proof for m1.
	c1cert := c1.pki.cert
	if err := enrollKeyed(ctx, t, c1, "m1", key, c1cert); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Enroll as m1 presenting c1's certificate: %v; want PermissionDenied", err)
	}
	// m1's own certificate is.
	if err := enrollKeyed(ctx, t, c1, "m1", key, m1.pki.cert); err != nil {
		t.Errorf("Enroll as m1 presenting m1's certificate: %v", err)
	}
	// The record now names the certificate just signed (not m1's files):
	// m1, restarted at another address, renews (its certificate does not
	// name the address) by presenting its old one... which the record no
	// longer names, so it is refused; restored, it renews.
	stopM1()
	old, _ := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "m1")
	m1b, err := New(Config{Name: "m1", DataDir: mdir, API: "127.0.0.4:0", Gossip: "127.0.0.4:0", Overlay: "127.0.0.4:0", Join: []string{seed}, Key: key}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = m1b.Run(ctx) // refused: labd stops, saying why
	m1b.Close()
	if err == nil || !strings.Contains(err.Error(), "name is taken") || !strings.Contains(err.Error(), "labctl node remove m1") {
		t.Fatalf("m1 at a new address, with a certificate its record does not name: Run = %v; want the name taken, and what to do", err)
	}
	_, mcert, err := auth.LoadNodeCert(mdir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.control.Update(ctx, func(tx *store.Tx) error {
		old.Serial, old.Cert = mcert.SerialNumber.Text(16), mcert.Raw
		return lab.PutNodeIdentity(tx, old)
	}); err != nil {
		t.Fatal(err)
	}
	m1c, _ := runDaemon(t, Config{Name: "m1", DataDir: mdir, API: "127.0.0.4:0", Gossip: "127.0.0.4:0", Overlay: "127.0.0.4:0", Join: []string{seed}, Key: key}, slog.New(slog.DiscardHandler))
	waitUntil(t, "m1 renewed at its new address", m1c.pki.hasCert)
	waitUntil(t, "m1's record names its renewed certificate", func() bool {
		_, cert, err := auth.LoadNodeCert(mdir)
		id, _ := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "m1")
		return err == nil && id.Serial == cert.SerialNumber.Text(16) && id.Serial != mcert.SerialNumber.Text(16)
	})
}

// TestEnrolNameKeylessLoopback: loopback development without a cluster
// key keeps working when a data directory is wiped: the name is taken
// over, and counted (name_rebound).
func TestEnrolNameKeylessLoopback(t *testing.T) {
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0", Control: true}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 2 {
		if err := enrollKeyed(ctx, t, c1, "dev", nil, nil); err != nil {
			t.Fatalf("keyless loopback enrolment of dev: %v", err)
		}
	}
	if n := c1.enroll.refused.Count("dev", "name_rebound"); n != 1 {
		t.Errorf("name_rebound of dev: %d, want 1", n)
	}
}

// enrollKeyed calls Enroll on d as node, with the cluster key's proof
// (none without key), presenting cert as its client certificate when
// not nil.
func enrollKeyed(ctx context.Context, t *testing.T, d *Daemon, node string, key []byte, cert *tls.Certificate) error {
	t.Helper()
	cfg := auth.PinnedTLS(d.pki.caHash(), nil)
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(d.api.lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	nkey, err := auth.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := auth.NewNodeCSR(nkey, node, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := &labv1.EnrollRequest{Node: node, Csr: csr}
	if len(key) > 0 {
		req.Proof = auth.EnrollProof(key, csr, d.pki.ca.Cert.Raw)
	}
	_, err = enrollKeyedCert(ctx, t, conn, req, nkey)
	return err
}

// enrollKeyedCert makes the Enroll call and returns the certificate it
// got, with its key.
func enrollKeyedCert(ctx context.Context, t *testing.T, conn *grpc.ClientConn, req *labv1.EnrollRequest, key crypto.Signer) (*tls.Certificate, error) {
	t.Helper()
	resp, err := labv1.NewControlServiceClient(conn).Enroll(ctx, req, grpc.WaitForReady(true))
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(resp.GetCa())
	if err != nil {
		t.Fatal(err)
	}
	c, err := auth.TLSCertificate(key, resp.GetCertificate(), ca)
	if err != nil {
		t.Fatal(err)
	}
	return &c, nil
}

// TestClusterKeyRetiredByRemoval: once a node is removed, the cluster key
// (which the removed node still holds) enrols no new node, under any
// name; a node renewing its own certificate still may, and an invite
// still enrols.
func TestClusterKeyRetiredByRemoval(t *testing.T) {
	key := []byte("class key")
	seed := gossipPort(t)
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true, Key: key}, slog.New(slog.DiscardHandler))
	m1, _ := runDaemon(t, Config{Name: "m1", DataDir: t.TempDir(), API: "127.0.0.3:0", Gossip: "127.0.0.3:0", Overlay: "127.0.0.3:0", Join: []string{seed}, Key: key}, slog.New(slog.DiscardHandler))
	waitUntil(t, "m1 enrolled", m1.pki.hasCert)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := enrollKeyed(ctx, t, c1, "m2", key, nil); err != nil {
		t.Fatalf("a new node with the cluster key before any removal: %v", err)
	}
	waitUntil(t, "m2's record", func() bool {
		_, ok := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "m2")
		return ok
	})
	if _, err := c1.control.Update(ctx, func(tx *store.Tx) error {
		id, _ := lab.GetNodeIdentity(tx, "m2")
		id.Removed, id.RemovedAt = true, time.Now()
		return lab.PutNodeIdentity(tx, id)
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"m3", "m2"} {
		err := enrollKeyed(ctx, t, c1, name, key, nil)
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "labctl node invite") {
			t.Errorf("Enroll %s with the cluster key after a removal: %v; want PermissionDenied naming invites", name, err)
		}
	}
	if n := c1.enroll.refused.Count("m3", "cluster_key_retired"); n != 1 {
		t.Errorf("cluster_key_retired refusals of m3: %d, want 1", n)
	}
	if err := enrollKeyed(ctx, t, c1, "m1", key, m1.pki.cert); err != nil {
		t.Errorf("m1 renewing with its own certificate after a removal: %v", err)
	}
}
