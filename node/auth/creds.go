package auth

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// One API port serves TLS and, on loopback, plaintext: the server looks
// at the first byte a client sends. A TLS connection starts with a
// handshake record (RFC 8446 §5.1: ContentType handshake(22)); an HTTP/2
// connection in the clear starts with the client preface "PRI * HTTP/2.0"
// (RFC 9113 §3.4). Nothing else is served.

// recordTypeHandshake is the TLS record content type of a ClientHello.
const recordTypeHandshake = 0x16

// HandshakeTimeout bounds how long a connection may take to send its
// first byte and finish the TLS handshake; a client that sends nothing
// is closed then.
const HandshakeTimeout = 10 * time.Second

// ErrPlaintextRefused is a plaintext connection to a server that serves
// only TLS.
var ErrPlaintextRefused = errors.New("plaintext connection refused: this API serves TLS only")

// ServerCreds are the API listener's transport credentials: TLS under cfg
// for a client that starts a TLS handshake (AuthInfo is
// credentials.TLSInfo, with the verified chains of a client certificate),
// and plaintext HTTP/2 (AuthInfo at SecurityLevel NoSecurity) for any
// other client when allowPlain, which is closed otherwise.
func ServerCreds(cfg *tls.Config, allowPlain bool) credentials.TransportCredentials {
	return &sniffCreds{
		tls:        credentials.NewTLS(cfg),
		plain:      insecure.NewCredentials(),
		cfg:        cfg,
		allowPlain: allowPlain,
		timeout:    HandshakeTimeout,
	}
}

type sniffCreds struct {
	tls, plain credentials.TransportCredentials
	cfg        *tls.Config
	allowPlain bool
	timeout    time.Duration
}

// ServerHandshake reads the connection's first byte under a deadline and
// hands the connection, that byte replayed, to TLS or to plaintext. The
// deadline stays set for the rest of the handshake; gRPC's server clears
// it once its HTTP/2 transport is up (after reading the client preface).
func (c *sniffCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if err := raw.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("api handshake: %w", err)
	}
	conn := &peekedConn{Conn: raw, r: bufio.NewReaderSize(raw, 1)}
	first, err := conn.r.Peek(1)
	if err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("api handshake: read first byte: %w", err)
	}
	if first[0] == recordTypeHandshake {
		// tlsCreds closes raw (through conn) when the handshake fails.
		return c.tls.ServerHandshake(conn)
	}
	if !c.allowPlain {
		raw.Close()
		return nil, nil, fmt.Errorf("api handshake from %s: %w", raw.RemoteAddr(), ErrPlaintextRefused)
	}
	return c.plain.ServerHandshake(conn)
}

// ClientHandshake is TLS: a client of ServerCreds uses ClientTLS or
// PinnedTLS, or insecure credentials on loopback.
func (c *sniffCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.tls.ClientHandshake(ctx, authority, raw)
}

func (c *sniffCreds) Info() credentials.ProtocolInfo { return c.tls.Info() }

func (c *sniffCreds) Clone() credentials.TransportCredentials {
	cp := *c
	cp.tls = c.tls.Clone()
	cp.plain = c.plain.Clone()
	return &cp
}

// OverrideServerName is deprecated in gRPC and unused.
func (c *sniffCreds) OverrideServerName(string) error { return nil }

// peekedConn is a connection whose first bytes were read into r; reads
// come from r, which replays them and then reads the connection.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if c.r.Buffered() == 0 {
		return c.Conn.Read(p)
	}
	return c.r.Read(p)
}

// SyscallConn is the connection's socket, for gRPC's channelz and socket
// options, as the connection without the wrapper would give.
func (c *peekedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a socket")
	}
	return sc.SyscallConn()
}

// ServerTLSConfig is the API's TLS configuration: cert (the node's,
// with the CA in its chain: TLSCertificate) and TLS 1.3; a client
// certificate is asked for and, when one is given, verified against
// caCert (a node's: NodeOf names it). Users present tokens, not
// certificates, so a client without one is let through to the
// interceptor.
func ServerTLSConfig(caCert *x509.Certificate, cert tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}
}

// ClientTLS are a node's credentials for calling another node: mutual TLS
// with cert (nil: none), the server's certificate verified against
// caCert and the address dialled.
func ClientTLS(caCert *x509.Certificate, cert *tls.Certificate) credentials.TransportCredentials {
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return credentials.NewTLS(cfg)
}

// PinnedTLS is a client configuration that trusts the CA whose CAHash is
// caHash and nothing else, before it has the CA's certificate: the
// server's chain must contain that CA's certificate and the server's
// certificate must be a node's certificate that verifies against it, for
// server authentication; otherwise the handshake fails, before anything
// (a token, a proof) is sent. onCA, if not nil, gets the CA certificate
// after a handshake that passed, to be kept. kubeadm join's discovery
// does this with --discovery-token-ca-cert-hash.
//
// The name dialled is not checked: crypto/tls does not show it to
// VerifyConnection when it is an IP address, and the pin, not the name,
// is what is trusted here (any node of the pinned cluster may answer).
// Calls after this one verify against the CA the usual way, name
// included.
func PinnedTLS(caHash string, onCA func(*x509.Certificate)) *tls.Config {
	want, err := ParseCAHash(caHash)
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Verification is VerifyConnection's: against the pinned CA,
		// not the system's roots.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err != nil {
				return err
			}
			ca, verr := verifyPinned(cs, want)
			if verr != nil {
				return verr
			}
			if onCA != nil {
				onCA(ca)
			}
			return nil
		},
	}
}

// verifyPinned finds in the peer's chain the CA certificate whose hash is
// want and verifies the leaf against it.
func verifyPinned(cs tls.ConnectionState, want string) (*x509.Certificate, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, errors.New("CA pin: the server sent no certificate")
	}
	var ca *x509.Certificate
	for _, c := range cs.PeerCertificates[1:] {
		if c.IsCA && CAHash(c) == want {
			ca = c
			break
		}
	}
	if ca == nil {
		return nil, fmt.Errorf("CA pin: the server's certificate chain has no CA with hash %s: not the cluster you pinned", want)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	leaf := cs.PeerCertificates[0]
	opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		return nil, fmt.Errorf("CA pin: the server's certificate does not verify against the pinned CA: %w", err)
	}
	if _, ok := NodeOf(leaf); !ok {
		return nil, errors.New("CA pin: the server's certificate is not a labnet node's")
	}
	return ca, nil
}
