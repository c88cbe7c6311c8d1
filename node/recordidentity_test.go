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
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestRecordIdentity: a control node that holds the CA but does not lead
// has its own identity recorded at the leader (RecordIdentity), and is
// then admitted by the leader's gossip, which requires records. The
// leader records only the caller's own certificate: a newer control
// certificate replaces a record, a newer member certificate does not, a
// removed name stays removed; a call passed on by a control node that
// does not lead is recorded at the leader, and a member may not pass one
// on.
func TestRecordIdentity(t *testing.T) {
	key := []byte("class key")
	seed := gossipPort(t)
	dir1 := t.TempDir()
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: dir1, API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true, Key: key}, slog.New(slog.DiscardHandler))
	waitUntil(t, "c1 leads", c1.control.isLeader)
	c2, _ := runDaemon(t, Config{Name: "c2", DataDir: t.TempDir(), API: "127.0.0.2:0", Gossip: "127.0.0.2:0", Overlay: "127.0.0.2:0", Control: true, Key: key, Join: []string{seed},
		CACert: filepath.Join(dir1, auth.CACertFile), CAKey: filepath.Join(dir1, auth.CAKeyFile)}, slog.New(slog.DiscardHandler))
	waitUntil(t, "c2's identity recorded at the leader", func() bool {
		id, ok := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "c2")
		der := c2.pki.certDER()
		c, err := identityOf("c2", der)
		return ok && der != nil && err == nil && id.Serial == c.Serial && id.Kind == auth.KindControl
	})
	waitUntil(t, "c1's gossip admits c2", func() bool {
		m, ok := c1.control.member("c2")
		return ok && m.State == cluster.StateAlive
	})
	m1, _ := runDaemon(t, Config{Name: "m1", DataDir: t.TempDir(), API: "127.0.0.3:0", Gossip: "127.0.0.3:0", Overlay: "127.0.0.3:0", Join: []string{seed}, Key: key}, slog.New(slog.DiscardHandler))
	waitUntil(t, "m1 enrolled", m1.pki.hasCert)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// call calls RecordIdentity at d presenting cert.
	call := func(d *Daemon, cert *tls.Certificate, md ...string) error {
		conn, err := grpc.NewClient(d.api.lis.Addr().String(), grpc.WithTransportCredentials(auth.ClientTLS(c1.pki.ca.Cert, cert)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = labv1.NewControlServiceClient(conn).RecordIdentity(metadata.AppendToOutgoingContext(ctx, md...), &labv1.RecordIdentityRequest{}, grpc.WaitForReady(true))
		return err
	}
	// newCert is a certificate of c1's CA for node of kind control.
	newCert := func(node string, control bool) *tls.Certificate {
		k, err := auth.NewNodeKey()
		if err != nil {
			t.Fatal(err)
		}
		csr, err := auth.NewNodeCSR(k, node, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // a later start than the last one signed (seconds)
		der, err := c1.pki.ca.SignNode(csr, node, control)
		if err != nil {
			t.Fatal(err)
		}
		c, err := auth.TLSCertificate(k, der, c1.pki.ca.Cert)
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	serialOf := func(node string) string {
		id, _ := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, node)
		return id.Serial
	}

	// m1's own certificate, recorded already: nothing changes.
	before := serialOf("m1")
	if err := call(c1, m1.pki.cert); err != nil || serialOf("m1") != before {
		t.Errorf("m1's RecordIdentity of its recorded certificate: %v; serial %s, was %s", err, serialOf("m1"), before)
	}
	// A newer member certificate for m1 does not replace its record.
	if err := call(c1, newCert("m1", false)); status.Code(err) != codes.PermissionDenied || serialOf("m1") != before {
		t.Errorf("RecordIdentity of a newer member certificate of m1: %v; want PermissionDenied and the record kept", err)
	}
	if n := c1.enroll.refused.Count("m1", "name_taken"); n != 1 {
		t.Errorf("name_taken refusals of m1: %d, want 1", n)
	}
	// A newer control certificate for c2 (its CA re-signed it) does,
	// passed on by c2, which does not lead.
	nc := newCert("c2", true)
	if err := call(c2, nc); err != nil {
		t.Fatalf("RecordIdentity of c2's newer certificate at c2: %v", err)
	}
	if want := nc.Leaf.SerialNumber.Text(16); serialOf("c2") != want {
		t.Errorf("c2's record names %s, want %s", serialOf("c2"), want)
	}
	// A member may not pass on another node's certificate.
	other := newCert("m7", true)
	err := call(c1, m1.pki.cert, auth.ForwardedByKey, "m1", forwardedCertKey, string(other.Leaf.Raw))
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("m1 passes on m7's certificate: %v; want PermissionDenied", err)
	}
	if _, ok := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "m7"); ok {
		t.Error("m7 was recorded from a certificate m1 passed on")
	}
	// A removed name stays removed.
	if _, err := c1.control.Update(ctx, func(tx *store.Tx) error {
		id, _ := lab.GetNodeIdentity(tx, "m1")
		id.Removed = true
		return lab.PutNodeIdentity(tx, id)
	}); err != nil {
		t.Fatal(err)
	}
	if err := call(c1, newCert("m1", true)); status.Code(err) != codes.PermissionDenied {
		t.Errorf("RecordIdentity of a removed node: %v; want PermissionDenied", err)
	}
}
