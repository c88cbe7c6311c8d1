package auth

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type testNode struct {
	key     crypto.Signer
	certDER []byte
	cert    *x509.Certificate
}

func signTestNode(t testing.TB, ca *CA, name string, control bool, ips ...net.IP) testNode {
	t.Helper()
	key, err := NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := NewNodeCSR(key, name, ips, nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.SignNode(csr, name, control)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testNode{key, der, cert}
}

func TestSignNode(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	now := ca.Cert.NotBefore.Add(time.Hour)
	ca.Now = func() time.Time { return now }
	key, err := NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := NewNodeCSR(key, "node-1", []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("127.0.0.1")}, []string{"labd-0.labd"})
	if err != nil {
		t.Fatal(err)
	}
	for _, control := range []bool{true, false} {
		der, err := ca.SignNode(csr, "node-1", control)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if name, ok := NodeOf(cert); !ok || name != "node-1" {
			t.Errorf("NodeOf = %q, %v", name, ok)
		}
		if cert.Subject.CommonName != "node-1" {
			t.Errorf("CN = %q", cert.Subject.CommonName)
		}
		wantKind := map[bool]string{true: "control", false: "member"}[control]
		if got := NodeKind(cert); got != wantKind || !slices.Equal(cert.Subject.OrganizationalUnit, []string{wantKind}) {
			t.Errorf("kind = %q (OU %v), want %q", got, cert.Subject.OrganizationalUnit, wantKind)
		}
		var ips []string
		for _, ip := range cert.IPAddresses {
			ips = append(ips, ip.String())
		}
		if want := []string{"10.0.0.5", "127.0.0.1", "::1"}; !slices.Equal(ips, want) {
			t.Errorf("IP SANs = %v, want %v", ips, want)
		}
		if want := []string{"labd-0.labd", "localhost"}; !slices.Equal(cert.DNSNames, want) {
			t.Errorf("DNS SANs = %v, want %v", cert.DNSNames, want)
		}
		if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}; !slices.Equal(cert.ExtKeyUsage, want) {
			t.Errorf("ExtKeyUsage = %v", cert.ExtKeyUsage)
		}
		if cert.IsCA {
			t.Error("node certificate is a CA")
		}
		if !cert.NotAfter.Equal(now.Add(365*24*time.Hour).Truncate(time.Second)) || cert.NotBefore.After(now) {
			t.Errorf("valid %v to %v, want a year from %v", cert.NotBefore, cert.NotAfter, now)
		}
		if cert.SerialNumber.BitLen() < 100 || cert.SerialNumber.Sign() <= 0 {
			t.Errorf("serial %v is not a positive random 128-bit number", cert.SerialNumber)
		}
		if !samePublic(cert, key) {
			t.Error("certificate is not for the request's key")
		}
		roots := x509.NewCertPool()
		roots.AddCert(ca.Cert)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, DNSName: "10.0.0.5", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("verify: %v", err)
		}
	}

	// Two certificates never share a serial.
	a := signTestNode(t, ca, "a", false)
	b := signTestNode(t, ca, "a", false)
	if a.cert.SerialNumber.Cmp(b.cert.SerialNumber) == 0 {
		t.Error("two certificates with one serial")
	}
}

// A node certificate never outlives its CA.
func TestSignNodeClampsToCA(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	ca.Now = func() time.Time { return ca.Cert.NotAfter.Add(-24 * time.Hour) }
	n := signTestNode(t, ca, "n", false)
	if n.cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("node certificate expires %v, after its CA %v", n.cert.NotAfter, ca.Cert.NotAfter)
	}
}

func TestSignNodeRefuses(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	key, err := NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csrFor := func(tmpl *x509.CertificateRequest) []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	good := csrFor(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "n1"}, URIs: []*url.URL{NodeURI("n1")}})
	tampered := slices.Clone(good)
	tampered[len(tampered)-5] ^= 0xff // the signature

	for _, tc := range []struct {
		name string
		csr  []byte
		node string
		want string
	}{
		{"another node's CN", csrFor(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "n2"}}), "n1", `names node "n2"`},
		{"another node's URI", csrFor(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "n1"}, URIs: []*url.URL{NodeURI("n2")}}), "n1", "labnet://node/n2"},
		{"a second URI", csrFor(&x509.CertificateRequest{URIs: []*url.URL{NodeURI("n1"), {Scheme: "spiffe", Host: "x", Path: "/y"}}}), "n1", "spiffe://x/y"},
		{"bad signature", tampered, "n1", "signature"},
		{"not a request", []byte("hello"), "n1", "parse request"},
		{"empty", nil, "n1", "parse request"},
		{"bad node name", good, "a/b", "not a node name"},
		{"empty node name", good, "", "not a node name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der, err := ca.SignNode(tc.csr, tc.node, false)
			if err == nil {
				t.Fatalf("SignNode issued %d bytes", len(der))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
	// A request with no name at all is issued for the node asked.
	der, err := ca.SignNode(csrFor(&x509.CertificateRequest{}), "n1", false)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	if name, _ := NodeOf(cert); name != "n1" {
		t.Errorf("NodeOf = %q", name)
	}
}

func TestNodeCertFiles(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, _, err := LoadNodeCert(dir); err == nil {
		t.Fatal("LoadNodeCert of an empty directory succeeded")
	}
	n := signTestNode(t, ca, "n1", false, net.ParseIP("10.1.2.3"))
	if err := WriteNodeCert(dir, n.key, n.certDER); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, NodeKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("node.key: %v, %v", fi.Mode(), err)
	}
	key, cert, err := LoadNodeCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Equal(n.cert) || !samePublic(cert, key) {
		t.Error("LoadNodeCert gave another pair")
	}

	// Half a renewal: the new key with the old certificate.
	m := signTestNode(t, ca, "n1", false)
	keyPEM, _ := encodeKey(m.key)
	os.WriteFile(filepath.Join(dir, NodeKeyFile), keyPEM, 0o600)
	if _, _, err := LoadNodeCert(dir); err == nil || !strings.Contains(err.Error(), NodeCertFile) {
		t.Errorf("LoadNodeCert of a mismatched pair: %v", err)
	}
}

func TestRenewReason(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	n := signTestNode(t, ca, "n1", false, net.ParseIP("10.1.2.3"))
	now := n.cert.NotBefore.Add(time.Hour)
	ips := []net.IP{net.ParseIP("10.1.2.3")}
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		ca   *x509.Certificate
		node string
		now  time.Time
		ips  []net.IP
		dns  []string
		want string
	}{
		{"good", n.cert, ca.Cert, "n1", now, ips, []string{"localhost"}, ""},
		{"good, loopback", n.cert, ca.Cert, "n1", now, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}, nil, ""},
		{"missing", nil, ca.Cert, "n1", now, ips, nil, "no certificate"},
		{"another CA", n.cert, other.Cert, "n1", now, ips, nil, "not signed by the cluster CA"},
		{"another node", n.cert, ca.Cert, "n2", now, ips, nil, `issued to node "n1"`},
		{"expiring", n.cert, ca.Cert, "n1", n.cert.NotAfter.Add(-29 * 24 * time.Hour), ips, nil, "expires"},
		{"expired", n.cert, ca.Cert, "n1", n.cert.NotAfter.Add(time.Hour), ips, nil, "expires"},
		{"new address", n.cert, ca.Cert, "n1", now, []net.IP{net.ParseIP("10.1.2.4")}, nil, "does not name 10.1.2.4"},
		{"new name", n.cert, ca.Cert, "n1", now, ips, []string{"labd.example"}, "does not name labd.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RenewReason(tc.cert, tc.ca, tc.node, tc.now, tc.ips, tc.dns)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("RenewReason = %q, want %q", got, tc.want)
			}
			if tc.cert != nil {
				if covers := CertCovers(tc.cert, tc.ips, tc.dns); covers != !strings.HasPrefix(tc.want, "does not name") {
					t.Errorf("CertCovers = %v", covers)
				}
			}
		})
	}
}

func TestSignNodeForOwner(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	key, err := NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := NewNodeCSR(key, "alice-laptop", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.SignNodeFor(csr, "alice-laptop", false, "alice")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := NodeOf(cert); !ok || n != "alice-laptop" {
		t.Errorf("NodeOf = %q, %v; want alice-laptop", n, ok)
	}
	if o, ok := OwnerOf(cert); !ok || o != "alice" {
		t.Errorf("OwnerOf = %q, %v; want alice", o, ok)
	}
	if k := NodeKind(cert); k != KindMember {
		t.Errorf("NodeKind = %q; want %q", k, KindMember)
	}
	// No owner: no user URI.
	der, err = ca.SignNode(csr, "alice-laptop", false)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	if o, ok := OwnerOf(cert); ok {
		t.Errorf("OwnerOf an unowned node's certificate = %q; want none", o)
	}
	if _, err := ca.SignNodeFor(csr, "alice-laptop", false, "a/b"); err == nil {
		t.Error("an owner with a slash was signed")
	}
}
