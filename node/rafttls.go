package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/labnet-dev/labnet/node/control"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
)

// Raft connections run mutual TLS 1.3 with node certificates of the
// cluster CA of kind control (node/control's TLS; docs/security.md), so
// a member, whatever credentials it holds, cannot speak raft. labd runs
// raft over TLS always, loopback development included: every control
// node has a certificate before raft needs a connection (the node that
// forms the cluster, and every --ca-cert holder, signs its own; a
// --control node that enrols has its certificate before the leader adds
// it: addControlNodes waits for gossip to show it).

// raftTLS is what raft's connections are secured with: this node's
// certificate as pki has it now, and the identity records of st.
func raftTLS(p *pki, st *store.Store) *control.TLS {
	return &control.TLS{Credentials: p.raftCredentials, Allow: raftAllow(st)}
}

// raftCredentials are the node's certificate and the cluster CA's, for
// one new raft connection: a certificate renewed or enrolled while labd
// runs applies from the next one.
func (p *pki) raftCredentials() (*tls.Certificate, *x509.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cert == nil || p.caCert == nil {
		return nil, nil, errors.New("this node has no certificate yet: it has not enrolled")
	}
	return p.cert, p.caCert, nil
}

// raftAllow decides about a control node's certificate of the cluster CA
// by the local replica: a node removed, or demoted (labctl node demote:
// it is no voter and the leader does not add it back), is refused; so is
// a certificate older than the one its identity record names (replaced
// by a new enrolment). A node with no record yet, or a newer certificate
// than its record's, is admitted: a control certificate is signed either
// by Enroll, which writes the record in the same step, or by a CA holder
// for itself (at start, a renewal at a new address), which records it
// once it can: through raft, so refusing it here would leave it out for
// good.
func raftAllow(st *store.Store) func(node string, cert *x509.Certificate) error {
	return func(node string, cert *x509.Certificate) error {
		if _, demoted := lab.DemotedAt(st, node); demoted {
			return &control.RefusedError{Node: node, Reason: "demoted", Err: fmt.Errorf("node %s was demoted (labctl node demote): promote it to speak raft again", node)}
		}
		id, ok := lab.GetNodeIdentity(lab.StoreGetter{St: st}, node)
		switch {
		case !ok:
			return nil
		case id.Removed:
			return &control.RefusedError{Node: node, Reason: "removed", Err: fmt.Errorf("node %s was removed (labctl node remove)", node)}
		case id.Serial == "" || id.Serial == cert.SerialNumber.Text(16):
			return nil
		}
		if rec, err := x509.ParseCertificate(id.Cert); err == nil && cert.NotBefore.After(rec.NotBefore) {
			return nil // renewed, not recorded yet
		}
		return &control.RefusedError{Node: node, Reason: "old_certificate", Err: fmt.Errorf("node %s: certificate serial %s is not the one its identity names (%s): it was replaced", node, cert.SerialNumber.Text(16), id.Serial)}
	}
}
