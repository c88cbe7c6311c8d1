package node

import (
	"context"
	"crypto/tls"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
)

// Names are bound to certificates (issue 14): an enrolment by the
// cluster key, or on loopback without one, may not take a name whose
// identity record exists and is not removed, unless the caller proves it
// is that node by presenting the certificate the record names as its TLS
// client certificate (a renewal; the API's TLS asks for one and verifies
// it when given: auth.ServerTLSConfig). Otherwise the name's owner must be
// removed and invited again (`labctl node remove`, `labctl node invite`).
//
// Loopback development without a cluster key (one machine, one person)
// keeps working when a data directory is wiped: there the name is taken
// over, and the takeover logged. An invite is always enough: the admin
// who made it chose the name.

// checkName refuses the enrolment of node when g's identity record of it
// names another certificate than proven's (the serial of the certificate
// the caller presented for node, "" for none): "name_taken", counted and
// logged unless quiet (a second check, in the write, of one refusal).
func (s *controlServer) checkName(g lab.Getter, node, proven, from string, quiet bool) error {
	id, ok := lab.GetNodeIdentity(g, node)
	if !ok || id.Removed || (proven != "" && id.Serial == proven) {
		return nil
	}
	if len(s.clusterKey) == 0 && isLoopback(from) {
		if !quiet && s.refused.Add(node, "name_rebound") {
			s.log.Warn("a loopback enrolment without a cluster key takes over a node's name (development: its data directory was wiped?)", "node", node, "from", from, "serial", id.Serial)
		}
		return nil
	}
	format := "enrolment of node %q refused: the name is taken by another certificate (serial %s); if that node is gone, an admin runs `labctl node remove %s` then `labctl node invite %s`"
	if quiet {
		return status.Errorf(codes.PermissionDenied, format, node, id.Serial, node, node)
	}
	return s.refuse(node, from, "name_taken", format, node, id.Serial, node, node)
}

// provenSerial is the serial of the node certificate the caller of ctx
// presented, if it names node ("" otherwise). An Enroll a CA holder that
// does not lead passed on to the leader (api.NotLeader) comes from that
// holder's certificate, and names in provenSerialKey the serial its own
// caller presented: believed only from a control node's certificate,
// as forwarded users are (auth's forwardedPrincipal).
func provenSerial(ctx context.Context, node string) string {
	name, cert, ok := auth.PeerNode(ctx)
	if !ok {
		return ""
	}
	if name == node {
		return cert.SerialNumber.Text(16)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	by, serial := md.Get(auth.ForwardedByKey), md.Get(provenSerialKey)
	if auth.NodeKind(cert) != auth.KindControl || len(by) != 1 || by[0] != name || len(serial) != 1 {
		return ""
	}
	return serial[0]
}

// provenSerialKey is the metadata in which a CA holder passing Enroll on
// to the leader names the serial of the certificate its caller proved
// it holds.
const provenSerialKey = "labnet-enroll-proven-serial"

// provenMD is the metadata that carries proven to the leader.
func provenMD(proven string) []string {
	if proven == "" {
		return nil
	}
	return []string{provenSerialKey, proven}
}

// renewalCert is the client certificate this node presents when it
// enrols: its current certificate, or the one it is renewing, so that
// the CA holder knows it is the node its name's record names. Nothing
// when it has neither, when the certificate has expired (the server's
// handshake would refuse it), or when the server asks for another CA's
// (a cluster made anew).
func (p *pki) renewalCert(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	p.mu.Lock()
	c := p.cert
	if c == nil {
		c = p.prev
	}
	p.mu.Unlock()
	if c == nil || c.Leaf == nil || !time.Now().Before(c.Leaf.NotAfter) || cri.SupportsCertificate(c) != nil {
		return &tls.Certificate{}, nil
	}
	return c, nil
}
