package node

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// RecordIdentity (CONTRACT14b) writes the identity record of the calling
// node's own certificate, the one its TLS handshake presented (never one
// from the request): so every node that holds a certificate has its
// record, including a control node that holds the CA and signs its own
// (at start, or again when its address changed) while another leads.
// The leader records it when the name has no record, or when the record
// is not removed and the certificate is a control node's that starts no
// earlier than the recorded one (re-signed by a CA holder; certificates
// count time in seconds, so one of the same second counts: only CA holders
// and invites make control certificates for a name, and Enroll binds
// names). A removed name is refused ("removed"), any other certificate
// for a recorded name too ("name_taken"). A node that does not lead
// passes the call to the leader (api.NotLeader), with the certificate.
func (s *controlServer) RecordIdentity(ctx context.Context, _ *labv1.RecordIdentityRequest) (*labv1.RecordIdentityResponse, error) {
	cert, err := s.recordedCert(ctx)
	if err != nil {
		return nil, err
	}
	node, _ := auth.NodeOf(cert)
	rec, err := identityOf(node, cert.Raw)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if why, write := recordVerdict(lab.StoreGetter{St: s.store}, rec, cert); why != "" {
		return nil, s.refuseRecord(node, why)
	} else if !write {
		return &labv1.RecordIdentityResponse{}, nil
	}
	var why string
	err = writeIdentity(ctx, s.update, func(tx *store.Tx) error {
		var write bool
		if why, write = recordVerdict(tx, rec, cert); why != "" || !write {
			return errNoWrite
		}
		return lab.PutNodeIdentity(tx, rec)
	}, forwardedCertKey, string(cert.Raw))
	switch {
	case errors.Is(err, errNoWrite) && why != "":
		return nil, s.refuseRecord(node, why)
	case errors.Is(err, errNoWrite):
	case err != nil:
		return nil, enrollWriteErr(err)
	default:
		s.log.Info("node identity recorded", "node", node, "kind", rec.Kind, "serial", rec.Serial)
	}
	return &labv1.RecordIdentityResponse{}, nil
}

// errNoWrite ends a write that finds nothing to write, or a refusal.
var errNoWrite = errors.New("nothing to write")

// recordVerdict is what RecordIdentity does with rec (of cert) given
// g's record of the node: why it refuses ("" when it does not), and
// whether it writes.
func recordVerdict(g lab.Getter, rec lab.NodeIdentity, cert *x509.Certificate) (why string, write bool) {
	have, ok := lab.GetNodeIdentity(g, rec.Name)
	switch {
	case !ok:
		return "", true
	case have.Removed:
		return "removed", false
	case have.Serial == rec.Serial:
		return "", false
	case auth.NodeKind(cert) == auth.KindControl && !cert.NotBefore.Before(issued(have)):
		return "", true
	}
	return "name_taken", false
}

// issued is when the certificate of rec starts (NotBefore): the
// record's, or, in a record made before it was kept, its certificate's.
func issued(rec lab.NodeIdentity) time.Time {
	if !rec.NotBefore.IsZero() {
		return rec.NotBefore
	}
	if c, err := x509.ParseCertificate(rec.Cert); err == nil {
		return c.NotBefore
	}
	return time.Time{}
}

// refuseRecord counts and logs a refused RecordIdentity.
func (s *controlServer) refuseRecord(node, why string) error {
	if s.refused.Add(node, why) {
		s.log.Warn("node identity not recorded", "node", node, "reason", why)
	}
	if why == "removed" {
		return status.Errorf(codes.PermissionDenied, "node %s was removed (labctl node remove): its identity is not recorded again; it may come back only with a new invite (labctl node invite)", node)
	}
	return status.Errorf(codes.PermissionDenied, "node %s: its identity names another certificate, which this one does not replace (only a control node's newer certificate does): an admin runs `labctl node remove %s` then `labctl node invite %s`", node, node, node)
}

// forwardedCertKey carries, on a RecordIdentity a node that does not
// lead passes on to the leader, the certificate (DER) its caller
// presented; gRPC sends "-bin" metadata in base64.
const forwardedCertKey = "labnet-record-cert-bin"

// recordedCert is the certificate RecordIdentity records: the TLS
// peer's, or, on a call a control node passed on (labnet-forwarded-by
// names it), the one it names in forwardedCertKey, verified here against
// the cluster CA.
func (s *controlServer) recordedCert(ctx context.Context) (*x509.Certificate, error) {
	name, cert, ok := auth.PeerNode(ctx)
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "RecordIdentity records the caller's node certificate: the call presented none")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	fwd, by := md.Get(forwardedCertKey), md.Get(auth.ForwardedByKey)
	if len(fwd) == 0 {
		return cert, nil
	}
	if auth.NodeKind(cert) != auth.KindControl || len(by) != 1 || by[0] != name || len(fwd) != 1 {
		return nil, status.Errorf(codes.PermissionDenied, "node %s may not pass on another node's certificate: only control nodes forward RecordIdentity", name)
	}
	c, err := x509.ParseCertificate([]byte(fwd[0]))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "the certificate node %s passed on: %v", name, err)
	}
	s.pki.mu.Lock()
	ca := s.pki.caCert
	s.pki.mu.Unlock()
	if ca == nil {
		return nil, status.Error(codes.Unavailable, "this node does not know the cluster CA yet")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, status.Errorf(codes.PermissionDenied, "the certificate node %s passed on is not the cluster CA's: %v", name, err)
	}
	if _, ok := auth.NodeOf(c); !ok {
		return nil, status.Errorf(codes.InvalidArgument, "the certificate node %s passed on names no node", name)
	}
	return c, nil
}
