package cli

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// caHashPrefix starts a CA hash: "sha256:" and the hex SHA-256 of the CA
// certificate's SubjectPublicKeyInfo, kubeadm's
// --discovery-token-ca-cert-hash format (labd's auth.CAHash makes the same).
const caHashPrefix = "sha256:"

// caHash is cert's pin.
func caHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return caHashPrefix + hex.EncodeToString(sum[:])
}

// checkCAHash validates a --ca-hash and returns it in lower case.
func checkCAHash(h string) (string, error) {
	hexPart, ok := strings.CutPrefix(strings.ToLower(h), caHashPrefix)
	if b, err := hex.DecodeString(hexPart); !ok || err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("--ca-hash %q: want sha256: and 64 hex digits, as labctl user invite prints", h)
	}
	return caHashPrefix + hexPart, nil
}

// transportFor is how labctl talks to ep's server: TLS verified against
// the CA when one is known; plaintext only to a loopback server with none.
// A token is never sent in plaintext to a server on another machine.
func transportFor(ep endpoint) (credentials.TransportCredentials, error) {
	switch {
	case ep.ca != nil:
		pool := x509.NewCertPool()
		pool.AddCert(ep.ca)
		return credentials.NewTLS(&tls.Config{
			RootCAs:    pool,
			ServerName: hostOf(ep.server),
			MinVersion: tls.VersionTLS12,
		}), nil
	case isLoopback(ep.server):
		return insecure.NewCredentials(), nil
	case ep.token != "":
		return nil, fmt.Errorf("refusing to send a token in plaintext to %s: no CA is known for it; run labctl login --server %s --ca-hash sha256:... --token ... (labctl user invite prints the line)", ep.server, ep.server)
	default:
		return nil, fmt.Errorf("no CA is known for %s, and only a loopback labd speaks plaintext: run labctl login --server %s --ca-hash sha256:... --token ... (labctl user invite prints the line)", ep.server, ep.server)
	}
}

// pinnedTLS is the transport of labctl login: the server's chain must hold
// a CA certificate whose hash is pin, and the leaf must verify against that
// CA for the server's host. Anything else fails the handshake, so no call,
// and no token, is sent. The CA found and the reason for a failure are kept
// for the caller (gRPC turns a handshake failure into a generic
// Unavailable).
type pinnedTLS struct {
	pin  string
	host string

	mu  sync.Mutex
	ca  *x509.Certificate
	err error
}

func newPinnedTLS(server, pin string) *pinnedTLS {
	return &pinnedTLS{pin: pin, host: hostOf(server)}
}

func (p *pinnedTLS) credentials() credentials.TransportCredentials {
	cfg := &tls.Config{
		// The chain is verified by verify, against the pinned CA rather
		// than the system's roots.
		InsecureSkipVerify: true,
		VerifyConnection:   p.verify,
		MinVersion:         tls.VersionTLS12,
	}
	if _, err := netip.ParseAddr(p.host); err != nil {
		cfg.ServerName = p.host
	}
	return credentials.NewTLS(cfg)
}

func (p *pinnedTLS) verify(cs tls.ConnectionState) error {
	ca, err := p.check(cs.PeerCertificates)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ca, p.err = ca, err
	return err
}

func (p *pinnedTLS) check(chain []*x509.Certificate) (*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("the server sent no certificate")
	}
	var ca *x509.Certificate
	for _, c := range chain {
		if caHash(c) == p.pin {
			ca = c
			break
		}
	}
	if ca == nil {
		top := chain[len(chain)-1]
		if len(chain) == 1 && !top.IsCA {
			return nil, fmt.Errorf("the server's certificate chain holds no CA certificate to check --ca-hash %s against", p.pin)
		}
		return nil, fmt.Errorf("the server's CA %s does not match --ca-hash %s", caHash(top), p.pin)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != ca {
			inter.AddCert(c)
		}
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: p.host}); err != nil {
		return nil, fmt.Errorf("the server's certificate does not verify against the CA %s: %w", p.pin, err)
	}
	return ca, nil
}

// result is the CA the handshake found, or why it failed; both nil before
// a handshake.
func (p *pinnedTLS) result() (*x509.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ca, p.err
}

// bearer sends the token as "authorization: Bearer ..." on every call,
// unary and streaming. Over a connection without TLS it sends it only when
// plainOK (a loopback server): gRPC itself refuses otherwise.
type bearer struct {
	token   string
	plainOK bool
}

func (b bearer) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if !b.plainOK {
		ri, _ := credentials.RequestInfoFromContext(ctx)
		if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
			return nil, fmt.Errorf("refusing to send a token without TLS: %w", err)
		}
	}
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return !b.plainOK }
