package node

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/labnet-dev/labnet/node/auth"
)

// pki is this node's place in the cluster's certificates (docs/security.md):
// the cluster CA's certificate (DATA/ca.crt), the CA's key on the node
// that holds it (the bootstrapping control node's DATA/ca.key, or
// --ca-cert/--ca-key), and the node's own key and certificate (DATA/node.key,
// DATA/node.crt) that it serves the API with and calls other nodes with.
//
// A node that holds the CA's key signs its own certificate; every other
// node enrols (enroll.go) once gossip shows one that holds it. Until
// then the node has no certificate and serves nothing.
type pki struct {
	dir     string
	node    string
	control bool
	// names are what the node's certificate must name: the advertised
	// API address, a specific bound one and --tls-san.
	ips []net.IP
	dns []string
	log *slog.Logger

	ca *auth.CA // nil unless this node holds the CA's key
	// prev is the certificate found in the data directory that is not
	// used (it is to be renewed): enrolment presents it, to prove that
	// this node is the one its name's identity record names
	// (enrollname.go). nil when there was none.
	prev *tls.Certificate

	mu     sync.Mutex
	caCert *x509.Certificate // nil until known (a node before it enrols)
	cert   *tls.Certificate  // nil until issued; the CA follows the leaf
	server *tls.Config       // the API's, from caCert and cert
	ready  chan struct{}     // closed once cert is set
}

// openPKI loads what this node has of the cluster's certificates, and
// makes what it may: the CA, on the node that forms the control plane
// (or from --ca-cert/--ca-key), and a certificate signed by it. Other
// nodes with no usable certificate enrol later (needsEnrol).
func openPKI(cfg Config, advertisedAPI string, log *slog.Logger) (*pki, error) {
	p := &pki{dir: cfg.DataDir, node: cfg.Name, control: cfg.Control, log: log, ready: make(chan struct{})}
	p.ips, p.dns = certNames(cfg, advertisedAPI)
	caCertFile := filepath.Join(cfg.DataDir, auth.CACertFile)
	var err error
	switch {
	case cfg.CACert != "":
		if p.ca, err = auth.LoadCA(cfg.CACert, cfg.CAKey); err != nil {
			return nil, fmt.Errorf("--ca-cert: %w", err)
		}
		// labctl on this machine verifies the API against DATA/ca.crt.
		if err := auth.WriteCACert(caCertFile, p.ca.Cert); err != nil {
			return nil, err
		}
	case cfg.bootstraps() || exists(filepath.Join(cfg.DataDir, auth.CAKeyFile)):
		var created bool
		if p.ca, created, err = auth.LoadOrCreateCA(cfg.DataDir); err != nil {
			return nil, err
		}
		if created {
			log.Info("created the cluster CA", "cert", caCertFile, "hash", auth.CAHash(p.ca.Cert))
		}
	}
	if p.ca != nil {
		p.caCert = p.ca.Cert
	} else if c, err := auth.LoadCACert(caCertFile); err == nil {
		p.caCert = c
	} else if !errors.Is(err, fs.ErrNotExist) {
		log.Warn("the cluster CA's certificate is unreadable: enrolling again", "err", err)
	}

	key, cert, err := auth.LoadNodeCert(cfg.DataDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("the node's certificate is unusable: a new one is needed", "err", err)
	}
	reason := "no certificate"
	if err == nil {
		reason = auth.RenewReason(cert, p.caCert, p.node, time.Now(), p.ips, p.dns)
		if reason == "" && cfg.Control && auth.NodeKind(cert) != auth.KindControl {
			reason = "a member's certificate: a --control node needs a control node's (raft refuses others)"
		}
		if p.caCert == nil {
			reason = "the cluster CA is not known"
		}
	}
	if err == nil && reason != "" {
		if c, err := auth.TLSCertificate(key, cert.Raw, p.caCert); err == nil {
			p.prev = &c
		}
	}
	switch {
	case reason == "":
		return p, p.set(key, cert.Raw, p.caCert)
	case p.ca != nil:
		if err := p.signLocally(); err != nil {
			return nil, err
		}
		log.Info("node certificate issued by this node's CA", "why", reason)
	default:
		log.Info("this node needs a certificate from the cluster CA: it enrols once gossip shows a node that holds the CA", "why", reason)
	}
	return p, nil
}

// signLocally makes a key and has this node's CA sign its certificate.
func (p *pki) signLocally() error {
	key, csr, err := p.newRequest()
	if err != nil {
		return err
	}
	der, err := p.ca.SignNode(csr, p.node, p.control)
	if err != nil {
		return err
	}
	return p.store(key, der, p.ca.Cert)
}

// newRequest makes a new key and a certificate request naming this node
// and its addresses.
func (p *pki) newRequest() (crypto.Signer, []byte, error) {
	key, err := auth.NewNodeKey()
	if err != nil {
		return nil, nil, err
	}
	csr, err := auth.NewNodeCSR(key, p.node, p.ips, p.dns)
	return key, csr, err
}

// store writes the node's key and certificate and the CA's certificate
// to the data directory and starts using them.
func (p *pki) store(key crypto.Signer, certDER []byte, caCert *x509.Certificate) error {
	if err := auth.WriteNodeCert(p.dir, key, certDER); err != nil {
		return err
	}
	if p.ca == nil {
		if err := auth.WriteCACert(filepath.Join(p.dir, auth.CACertFile), caCert); err != nil {
			return err
		}
	}
	return p.set(key, certDER, caCert)
}

// set starts using a certificate: the API serves it, peers are called
// with it.
func (p *pki) set(key crypto.Signer, certDER []byte, caCert *x509.Certificate) error {
	c, err := auth.TLSCertificate(key, certDER, caCert)
	if err != nil {
		return err
	}
	srv := auth.ServerTLSConfig(caCert, c)
	// gRPC's TLS credentials negotiate HTTP/2 by ALPN (RFC 7301); the
	// configuration GetConfigForClient returns is used as it is.
	srv.NextProtos = []string{"h2"}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.caCert, p.cert, p.server = caCert, &c, srv
	select {
	case <-p.ready:
	default:
		close(p.ready)
	}
	return nil
}

// hasCert reports whether the node has its certificate.
func (p *pki) hasCert() bool {
	select {
	case <-p.ready:
		return true
	default:
		return false
	}
}

// certDER is the node's certificate (DER), nil before it has one.
func (p *pki) certDER() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cert == nil || len(p.cert.Certificate) == 0 {
		return nil
	}
	return p.cert.Certificate[0]
}

// caHash is the cluster CA's pin, "" while the CA is not known.
func (p *pki) caHash() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.caCert == nil {
		return ""
	}
	return auth.CAHash(p.caCert)
}

// serverTLS is the API's TLS configuration: the current certificate,
// looked up per connection (GetConfigForClient), so that the server can
// be built before the node has enrolled.
func (p *pki) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.server == nil {
				return nil, errors.New("this node has no certificate yet")
			}
			return p.server, nil
		},
	}
}

// clientCreds are the credentials this node calls other nodes with:
// mutual TLS with its certificate, the peer's verified against the CA.
func (p *pki) clientCreds() (credentials.TransportCredentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cert == nil {
		return nil, errors.New("this node has no certificate yet: it has not enrolled")
	}
	return auth.ClientTLS(p.caCert, p.cert), nil
}

// certNames are the addresses the node's certificate names (loopback is
// added by the CA): the advertised API host, the bound API host when it
// is a specific address, and --tls-san's names and addresses.
func certNames(cfg Config, advertisedAPI string) (ips []net.IP, dns []string) {
	add := func(host string) {
		if a, err := netip.ParseAddr(host); err == nil {
			if a.IsUnspecified() {
				return
			}
			ip := net.IP(a.Unmap().AsSlice())
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if host != "" && !slices.Contains(dns, host) {
			dns = append(dns, host)
		}
	}
	if h, _, err := net.SplitHostPort(advertisedAPI); err == nil {
		add(h)
	}
	if h, _, err := net.SplitHostPort(cfg.API); err == nil {
		add(h)
	}
	for _, san := range cfg.TLSSANs {
		add(san)
	}
	return ips, dns
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
