package auth

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Node certificates: a year, naming the node (CN and the URI SAN of
// NodeURI), its kind in the OU, and the addresses it serves its API on
// plus loopback, for server and client authentication (nodes call each
// other with them: mutual TLS).

const nodeValidity = 365 * 24 * time.Hour

// The OrganizationalUnit of a node certificate says its kind.
const (
	KindControl = "control"
	KindMember  = "member"
)

// SignNode issues node's certificate for the request csrDER (PKCS #10,
// DER). The request must be signed by its key and may name only node (in
// its CN and URI SANs); its IP and DNS SANs are copied and loopback
// (127.0.0.1, ::1, localhost) is added. The certificate is DER.
func (ca *CA) SignNode(csrDER []byte, node string, control bool) (certDER []byte, err error) {
	return ca.SignNodeFor(csrDER, node, control, "")
}

// SignNodeFor is SignNode for a node that a user owns (a student's
// laptop): owner, when set, is named in a second URI SAN
// "labnet://user/{owner}" (OwnerOf).
func (ca *CA) SignNodeFor(csrDER []byte, node string, control bool, owner string) (certDER []byte, err error) {
	if err := checkNodeName(node); err != nil {
		return nil, fmt.Errorf("sign node certificate: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("sign node certificate for %s: parse request: %w", node, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("sign node certificate for %s: request signature: %w", node, err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("sign node certificate for %s: %w", node, err)
	}
	if cn := csr.Subject.CommonName; cn != "" && cn != node {
		return nil, fmt.Errorf("sign node certificate for %s: the request names node %q", node, cn)
	}
	want := NodeURI(node).String()
	for _, u := range csr.URIs {
		if u.String() != want {
			return nil, fmt.Errorf("sign node certificate for %s: the request names %s", node, u)
		}
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("sign node certificate for %s: %w", node, err)
	}
	uris := []*url.URL{NodeURI(node)}
	if owner != "" {
		if err := checkNodeName(owner); err != nil {
			return nil, fmt.Errorf("sign node certificate for %s: owner: %w", node, err)
		}
		uris = append(uris, ownerURI(owner))
	}
	kind := KindMember
	if control {
		kind = KindControl
	}
	now := ca.now()
	notAfter := now.Add(nodeValidity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter // never outlive the CA
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node, OrganizationalUnit: []string{kind}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         uris,
		IPAddresses:  withLoopbackIPs(csr.IPAddresses),
		DNSNames:     withLocalhost(csr.DNSNames),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign node certificate for %s: %w", node, err)
	}
	// The name must come back out as it went in (NodeOf is what every
	// receiving node reads).
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sign node certificate for %s: %w", node, err)
	}
	if got, ok := NodeOf(cert); !ok || got != node {
		return nil, fmt.Errorf("sign node certificate for %s: the name does not survive a URI", node)
	}
	if got, _ := OwnerOf(cert); got != owner {
		return nil, fmt.Errorf("sign node certificate for %s: the owner %q does not survive a URI", node, owner)
	}
	return der, nil
}

// NodeKind is the kind (KindControl or KindMember) a node certificate
// records, "" when it records none.
func NodeKind(cert *x509.Certificate) string {
	for _, ou := range cert.Subject.OrganizationalUnit {
		if ou == KindControl || ou == KindMember {
			return ou
		}
	}
	return ""
}

// checkNodeName is node/config's rule (no slash, no white space) plus
// what a certificate needs: printable, and short.
func checkNodeName(node string) error {
	if node == "" || len(node) > 253 {
		return fmt.Errorf("%q is not a node name", node)
	}
	if strings.ContainsFunc(node, func(r rune) bool {
		return r == '/' || unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) {
		return fmt.Errorf("%q is not a node name", node)
	}
	return nil
}

func withLoopbackIPs(ips []net.IP) []net.IP {
	out := make([]net.IP, 0, len(ips)+2)
	for _, ip := range append(slices.Clone(ips), net.IPv4(127, 0, 0, 1), net.IPv6loopback) {
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		if !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out
}

func withLocalhost(names []string) []string {
	out := make([]string, 0, len(names)+1)
	for _, n := range append(slices.Clone(names), "localhost") {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
