package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"time"
)

// A node's own key and certificate live in its data directory; labd makes
// a key and a request (NewNodeKey, NewNodeCSR), has the CA sign it
// (locally or through ControlService.Enroll), stores the pair
// (WriteNodeCert) and renews it when RenewReason says so.

// The node's files in a data directory.
const (
	NodeKeyFile  = "node.key" // PEM PKCS #8, 0600
	NodeCertFile = "node.crt" // PEM, 0644
)

// RenewBefore is how long before its expiry a node certificate is renewed.
const RenewBefore = 30 * 24 * time.Hour

// NewNodeKey makes a node's key (ECDSA P-256).
func NewNodeKey() (crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	return key, nil
}

// NewNodeCSR is a certificate request (PKCS #10, DER) for key naming node
// and the addresses it serves on.
func NewNodeCSR(key crypto.Signer, node string, ips []net.IP, dns []string) ([]byte, error) {
	if err := checkNodeName(node); err != nil {
		return nil, fmt.Errorf("node certificate request: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: node},
		URIs:        []*url.URL{NodeURI(node)},
		IPAddresses: ips,
		DNSNames:    dns,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("node certificate request for %s: %w", node, err)
	}
	return der, nil
}

// WriteNodeCert stores a node's key (DATA/node.key, 0600) and certificate
// (DATA/node.crt, 0644), each replaced at once. A crash between the two
// leaves a pair that LoadNodeCert refuses, and labd enrols again.
func WriteNodeCert(dir string, key crypto.Signer, certDER []byte) error {
	keyPEM, err := encodeKey(key)
	if err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, NodeKeyFile), keyPEM, 0o600, false); err != nil {
		return fmt.Errorf("node certificate: write key: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, NodeCertFile), encodeCert(certDER), 0o644, false); err != nil {
		return fmt.Errorf("node certificate: write certificate: %w", err)
	}
	return nil
}

// LoadNodeCert reads a node's key and certificate from its data
// directory. Missing files wrap fs.ErrNotExist; a certificate that is not
// for the key is an error naming both files. Any error means: make a new
// key and enrol.
func LoadNodeCert(dir string) (crypto.Signer, *x509.Certificate, error) {
	keyFile, certFile := filepath.Join(dir, NodeKeyFile), filepath.Join(dir, NodeCertFile)
	key, err := readKey(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("node certificate: %w", err)
	}
	cert, err := readCert(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("node certificate: %w", err)
	}
	if !samePublic(cert, key) {
		return nil, nil, fmt.Errorf("node certificate: %s is not the certificate of the key in %s", certFile, keyFile)
	}
	return key, cert, nil
}

// CertCovers reports whether cert names every one of ips and dns.
func CertCovers(cert *x509.Certificate, ips []net.IP, dns []string) bool {
	return uncovered(cert, ips, dns) == ""
}

// uncovered is the first of ips and dns that cert does not name.
func uncovered(cert *x509.Certificate, ips []net.IP, dns []string) string {
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return ip.String()
		}
	}
	for _, name := range dns {
		if !slices.Contains(cert.DNSNames, name) {
			return name
		}
	}
	return ""
}

// RenewReason says why node's certificate must be renewed, or "" when it
// is good: missing (cert nil), not signed by the CA caCert (when given),
// issued to another node, expired or expiring within RenewBefore of now,
// or not naming one of the addresses the node now serves on.
func RenewReason(cert, caCert *x509.Certificate, node string, now time.Time, ips []net.IP, dns []string) string {
	if cert == nil {
		return "no certificate"
	}
	if caCert != nil {
		if err := cert.CheckSignatureFrom(caCert); err != nil {
			return "not signed by the cluster CA: " + err.Error()
		}
	}
	if got, ok := NodeOf(cert); !ok || got != node {
		return fmt.Sprintf("issued to node %q, not %q", got, node)
	}
	if now.Add(RenewBefore).After(cert.NotAfter) {
		return "expires " + cert.NotAfter.UTC().Format(time.RFC3339)
	}
	if missing := uncovered(cert, ips, dns); missing != "" {
		return "does not name " + missing
	}
	return ""
}

// TLSCertificate is a node's certificate for crypto/tls: the leaf, then
// the CA certificate, so a client that pins the CA by hash (PinnedTLS)
// finds it in the chain.
func TLSCertificate(key crypto.Signer, certDER []byte, caCert *x509.Certificate) (tls.Certificate, error) {
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("node certificate: %w", err)
	}
	if !samePublic(leaf, key) {
		return tls.Certificate{}, fmt.Errorf("node certificate: not the certificate of the key")
	}
	chain := [][]byte{certDER}
	if caCert != nil {
		chain = append(chain, caCert.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}
