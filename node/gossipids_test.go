package node

import (
	"crypto"
	"crypto/x509"
	"path/filepath"
	"testing"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
)

// TestGossipIdentities: the cluster's view of the replica's node identity
// records is the public key of each node's certificate and its removed
// mark; a node with no record has none.
func TestGossipIdentities(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "s.db"), store.Options{Origin: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ca, _, err := auth.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := auth.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := auth.NewNodeCSR(key, "alice-laptop", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.SignNode(csr, "alice-laptop", false)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	put := func(removed bool) {
		t.Helper()
		if _, err := st.Update(func(tx *store.Tx) error {
			return lab.PutNodeIdentity(tx, lab.NodeIdentity{Name: "alice-laptop", Kind: "member", Owner: "alice", Cert: der, Serial: cert.SerialNumber.Text(16), NotAfter: cert.NotAfter, Removed: removed})
		}); err != nil {
			t.Fatal(err)
		}
	}
	ids := newGossipIdentities(lab.StoreGetter{St: st})
	if _, _, ok := ids.Identity("alice-laptop"); ok {
		t.Fatal("a record before enrolment")
	}
	put(false)
	pub, removed, ok := ids.Identity("alice-laptop")
	if !ok || removed || !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
		t.Fatalf("Identity = %v, %v, %v; want the certificate's key", pub, removed, ok)
	}
	put(true)
	if _, removed, ok := ids.Identity("alice-laptop"); !ok || !removed {
		t.Fatalf("after removal: removed %v, ok %v", removed, ok)
	}
	if _, _, ok := ids.Identity("bob-laptop"); ok {
		t.Fatal("bob-laptop has no record")
	}
}
