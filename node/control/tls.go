package control

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/labnet-dev/labnet/node/auth"
)

// TLS is how raft connections are secured (docs/security.md): mutual TLS
// 1.3 in which both sides present a node certificate of the cluster CA
// whose kind is control (auth.NodeKind), and the accepting side, like the
// dialling one, asks Allow about the node it names. Only control nodes
// hold such certificates, so a member (a student's labd, with root on
// it and every credential it has) cannot speak raft at all.
//
// The certificates are looked up for every new connection, so a renewed
// or newly enrolled certificate applies from the next one. The address
// dialled is not checked against the certificate: raft's advertised
// address need not be one the certificate names, and every control node
// is trusted alike.
type TLS struct {
	// Credentials returns this node's certificate (with the CA in its
	// chain, as auth.TLSCertificate makes it) and the cluster CA's. An
	// error (the node has not enrolled yet) fails the connection.
	Credentials func() (*tls.Certificate, *x509.Certificate, error)
	// Allow, when set, decides about a peer whose certificate is a
	// control node's of the cluster CA: nil admits it. A *RefusedError
	// names the reason the refusal is counted under; any other error
	// counts as "refused".
	Allow func(node string, cert *x509.Certificate) error
}

// RefusedError is a raft peer refused: Node is the node its verified
// certificate names ("" when none was verified) and Reason is what it is
// counted under: no_certificate, bad_certificate (not of the cluster CA,
// expired, or naming no node), not_control, and Allow's reasons (labd's:
// removed, old_certificate).
type RefusedError struct {
	Node, Reason string
	Err          error
}

func (e *RefusedError) Error() string {
	who := "raft peer"
	if e.Node != "" {
		who += " " + e.Node
	}
	return fmt.Sprintf("%s refused (%s): %v", who, e.Reason, e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// server is the accepting side's configuration for one connection.
func (t *TLS) server() (*tls.Config, error) {
	cert, ca, err := t.Credentials()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{*cert},
		// Asked for, not required: a dialler without one is refused by
		// verify, under its own reason.
		ClientAuth:             tls.RequestClientCert,
		SessionTicketsDisabled: true, // every connection is checked in full
		VerifyConnection: func(cs tls.ConnectionState) error {
			return t.verify(cs, ca, x509.ExtKeyUsageClientAuth)
		},
	}, nil
}

// client is the dialling side's configuration for one connection.
func (t *TLS) client() (*tls.Config, error) {
	cert, ca, err := t.Credentials()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert, nil
		},
		// crypto/tls would check the chain and the name dialled; verify
		// checks the chain against the cluster CA and the kind instead
		// (the address is not what is trusted: see TLS).
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return t.verify(cs, ca, x509.ExtKeyUsageServerAuth)
		},
	}, nil
}

// verify admits a peer whose certificate chains to ca for usage, names a
// node, is of kind control, and is allowed.
func (t *TLS) verify(cs tls.ConnectionState, ca *x509.Certificate, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return &RefusedError{Reason: "no_certificate", Err: errors.New("no certificate presented")}
	}
	leaf := cs.PeerCertificates[0]
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca)
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return &RefusedError{Reason: "bad_certificate", Err: err}
	}
	node, ok := auth.NodeOf(leaf)
	if !ok {
		return &RefusedError{Reason: "bad_certificate", Err: errors.New("the certificate names no node")}
	}
	if kind := auth.NodeKind(leaf); kind != auth.KindControl {
		return &RefusedError{Node: node, Reason: "not_control", Err: fmt.Errorf("a certificate of kind %q: only control nodes speak raft", kind)}
	}
	if t.Allow == nil {
		return nil
	}
	if err := t.Allow(node, leaf); err != nil {
		var r *RefusedError
		if errors.As(err, &r) {
			if r.Node == "" {
				r.Node = node
			}
			return r
		}
		return &RefusedError{Node: node, Reason: "refused", Err: err}
	}
	return nil
}
