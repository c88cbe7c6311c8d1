package node

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/follow"
	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Enrolment (issue 13: the members are trusted with the cluster key): a
// node without a usable certificate asks a node whose gossip meta says it
// holds the CA's key, over TLS pinned to the CA hash in that meta (gossip
// is authenticated by the cluster key), with a proof that it holds the
// cluster key bound to its request and the pinned CA (auth.EnrollProof).
// A cluster without a cluster key enrols callers on loopback only.

// enrolTimeout bounds one attempt to enrol with one node.
const enrolTimeout = 10 * time.Second

// enrol gets this node its certificate from a node that holds the CA,
// trying the ones gossip shows until one answers or ctx ends.
func (p *pki) enrol(ctx context.Context, cl *cluster.Cluster, clusterKey []byte) error {
	changed, stop := cl.WatchMembers()
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	waiting := false
	for {
		for _, m := range caHolders(cl, p.node) {
			err := p.enrolWith(ctx, m, clusterKey)
			if err == nil {
				p.log.Info("enrolled: node certificate issued by the cluster CA", "by", m.Name, "ca", m.Meta.CAHash)
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if status.Code(err) == codes.PermissionDenied {
				// Refused (the name is bound to another certificate, or
				// removed, or the proof is wrong): asking again would be
				// refused again, so labd stops, saying why.
				return fmt.Errorf("enrolment refused by %s: %s", m.Name, status.Convert(err).Message())
			}
			p.log.Warn("enrolling", "with", m.Name, "api", m.Meta.APIAddr, "err", err)
		}
		if !waiting {
			p.log.Info("waiting for a node that holds the cluster CA (the control node that formed the cluster) to enrol with")
			waiting = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-tick.C:
		}
	}
}

// caHolders are the live nodes other than self whose meta says they hold
// the CA's key.
func caHolders(cl *cluster.Cluster, self string) []cluster.Member {
	var out []cluster.Member
	for _, m := range cl.Members() {
		if m.Name != self && m.State == cluster.StateAlive && m.Meta.CAKey && m.Meta.CAHash != "" && m.Meta.APIAddr != "" {
			out = append(out, m)
		}
	}
	return out
}

// otherCA reports whether a node that holds the cluster CA's key, as
// gossip shows it once joined, has another CA than this node's
// certificate: the cluster was made anew around this node's data
// directory, which must enrol again.
func (p *pki) otherCA(cl *cluster.Cluster) bool {
	if p.ca != nil {
		return false
	}
	mine := p.caHash()
	for _, m := range caHolders(cl, p.node) {
		if m.Meta.CAHash != mine {
			p.log.Warn("the cluster's CA is not the one this node's certificate is from: enrolling again", "node", m.Name, "cluster", m.Meta.CAHash, "mine", mine)
			return true
		}
	}
	return false
}

// enrolWith enrols with node m, proving it holds the cluster key.
func (p *pki) enrolWith(ctx context.Context, m cluster.Member, clusterKey []byte) error {
	return p.enrolAt(ctx, m.Name, m.Meta.APIAddr, m.Meta.CAHash, clusterKey, "")
}

// enrolAt enrols with the API at addr (node who): it learns the CA
// certificate from a handshake pinned to pin, proves it holds the cluster
// key over its request and that certificate (or sends the invite token),
// and checks that the certificate it gets names it and is from the pinned
// CA before it keeps it.
func (p *pki) enrolAt(ctx context.Context, who, addr, pin string, clusterKey []byte, token string) error {
	ctx, cancel := context.WithTimeout(ctx, enrolTimeout)
	defer cancel()
	caCert, err := pinnedCA(ctx, addr, pin)
	if err != nil {
		return err
	}
	key, csr, err := p.newRequest()
	if err != nil {
		return err
	}
	req := &labv1.EnrollRequest{Node: p.node, Csr: csr, Control: p.control, Token: token}
	if len(clusterKey) > 0 && token == "" {
		req.Proof = auth.EnrollProof(clusterKey, csr, caCert.Raw)
	}
	tlsCfg := auth.PinnedTLS(pin, nil)
	tlsCfg.GetClientCertificate = p.renewalCert
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := labv1.NewControlServiceClient(conn).Enroll(ctx, req)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(resp.GetCa())
	if err != nil || auth.CAHash(ca) != pin {
		return fmt.Errorf("enrol: the CA %s sent is not the pinned one %s", who, pin)
	}
	cert, err := x509.ParseCertificate(resp.GetCertificate())
	if err != nil {
		return fmt.Errorf("enrol: the certificate %s sent: %w", who, err)
	}
	if why := auth.RenewReason(cert, ca, p.node, time.Now(), p.ips, p.dns); why != "" {
		return fmt.Errorf("enrol: the certificate %s sent is unusable: %s", who, why)
	}
	if err := saveGossipKeys(p.dir, resp.GetGossipKeys()); err != nil { // before gossip needs them
		return fmt.Errorf("enrol: the gossip keys %s sent: %w", who, err)
	}
	return p.store(key, cert.Raw, ca)
}

// enrolToken enrols with an invite (labd --enroll): at the token's API
// address, pinned to its CA hash, until it succeeds, ctx ends or the
// invite is refused (the error says why; trying again would not help).
func (p *pki) enrolToken(ctx context.Context, tok auth.EnrollToken) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		err := p.enrolAt(ctx, tok.API, tok.API, tok.CAHash, nil, tok.Key)
		if err == nil {
			p.log.Info("enrolled with an invite: node certificate issued by the cluster CA", "at", tok.API, "ca", tok.CAHash)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c := status.Code(err); c == codes.PermissionDenied || c == codes.InvalidArgument {
			return fmt.Errorf("--enroll: %s", status.Convert(err).Message())
		}
		p.log.Warn("enrolling with an invite", "at", tok.API, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// pinnedCA handshakes with the API at addr, trusting only the CA whose
// hash is pin, and returns that CA's certificate from the server's chain.
func pinnedCA(ctx context.Context, addr, pin string) (*x509.Certificate, error) {
	var ca *x509.Certificate
	d := tls.Dialer{Config: auth.PinnedTLS(pin, func(c *x509.Certificate) { ca = c })}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	conn.Close()
	if ca == nil {
		return nil, fmt.Errorf("enrol: %s sent no CA certificate", addr)
	}
	return ca, nil
}

// controlServer serves ControlService: Follow by node/follow's server
// (which members refuse) and Enroll on a node that holds the CA's key.
type controlServer struct {
	*follow.Server
	pki        *pki
	clusterKey []byte
	update     updater      // commits the identity record (controlPlane.Update)
	store      *store.Store // the replica: invites and identities
	now        func() time.Time
	log        *slog.Logger
	refused    auth.NodeRefusals
	keys       *gossipKeys // the gossip keys Enroll and GossipKeys hand out (gossipkeys.go)
}

// Enroll signs the calling node's certificate request and records its
// identity, if it brings a valid invite for exactly that node (token),
// or proves it holds the cluster key (or, in a cluster without one,
// calls from loopback) and its name was not removed.
func (s *controlServer) Enroll(ctx context.Context, req *labv1.EnrollRequest) (*labv1.EnrollResponse, error) {
	ca := s.pki.ca
	if ca == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s does not hold the cluster CA's key: enrol with the control node that formed the cluster", s.pki.node)
	}
	from := "unknown"
	if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
		from = pr.Addr.String()
	}
	if req.GetToken() != "" {
		return s.enrollInvited(ctx, req, from)
	}
	if len(s.clusterKey) > 0 {
		if !auth.VerifyEnrollProof(s.clusterKey, req.GetCsr(), ca.Cert.Raw, req.GetProof()) {
			return nil, s.refuse(req.GetNode(), from, "bad_proof", "enrolment of node %q refused: its proof does not match this cluster's key (give it the same --cluster-key, or enrol with a token from `labctl node invite`)", req.GetNode())
		}
	} else if !isLoopback(from) {
		return nil, s.refuse(req.GetNode(), from, "not_loopback", "enrolment of node %q refused: this cluster has no --cluster-key, so only nodes on loopback may enrol without a token (`labctl node invite`)", req.GetNode())
	}
	if id, ok := lab.GetNodeIdentity(lab.StoreGetter{St: s.store}, req.GetNode()); ok && id.Removed {
		return nil, s.refuse(req.GetNode(), from, "removed", "enrolment of node %q refused: it was removed (labctl node remove); it may enrol again only with a new invite (labctl node invite)", req.GetNode())
	}
	proven := provenSerial(ctx, req.GetNode())
	if gone := retiredBy(s.store); len(s.clusterKey) > 0 && proven == "" && gone != "" {
		return nil, s.refuse(req.GetNode(), from, "cluster_key_retired", "enrolment of node %q refused: the cluster key stopped enrolling new nodes when node %s was removed (it still holds the key): enrol with a token from `labctl node invite`", req.GetNode(), gone)
	}
	if err := s.checkName(lab.StoreGetter{St: s.store}, req.GetNode(), proven, from, false); err != nil {
		return nil, err
	}
	der, err := ca.SignNode(req.GetCsr(), req.GetNode(), req.GetControl())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	rec, err := identityOf(req.GetNode(), der)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	err = writeIdentity(ctx, s.update, func(tx *store.Tx) error {
		if id, ok := lab.GetNodeIdentity(tx, rec.Name); ok && id.Removed {
			return status.Errorf(codes.PermissionDenied, "enrolment of node %q refused: it was removed", rec.Name)
		}
		if err := s.checkName(tx, rec.Name, proven, from, true); err != nil {
			return err
		}
		return lab.PutNodeIdentity(tx, rec)
	}, provenMD(proven)...)
	if err != nil {
		return nil, enrollWriteErr(err)
	}
	s.log.Info("node enrolled", "node", req.GetNode(), "control", req.GetControl(), "from", from, "serial", rec.Serial)
	return &labv1.EnrollResponse{Certificate: der, Ca: ca.Cert.Raw, GossipKeys: s.enrollGossipKeys()}, nil
}

// retiredBy names a removed node, if any: once one is, the cluster key
// (which every node it was shared with holds, the removed one too)
// enrols no new node; a node renewing its own certificate still may.
func retiredBy(r lab.Reader) string {
	for _, id := range lab.ListNodeIdentities(r) {
		if id.Removed {
			return id.Name
		}
	}
	return ""
}

// enrollInvited enrols with an invite: the token names a stored,
// unexpired invite for exactly req's node, whose owner and kind the
// certificate gets; the identity is written and the invite deleted in one
// write (a second use finds no invite).
func (s *controlServer) enrollInvited(ctx context.Context, req *labv1.EnrollRequest, from string) (*labv1.EnrollResponse, error) {
	node := req.GetNode()
	id, secret, err := identity.ParseToken(req.GetToken())
	if err != nil {
		return nil, s.refuse(node, from, "bad_token", "enrolment of node %q refused: the token is not an invite's (from `labctl node invite`)", node)
	}
	inv, why := s.checkInvite(lab.StoreGetter{St: s.store}, id, secret, node, req.GetControl())
	if why != "" {
		return nil, s.refuse(node, from, why, "enrolment of node %q refused: %s", node, inviteRefusal(why))
	}
	der, err := s.pki.ca.SignNodeFor(req.GetCsr(), node, inv.Control, inv.Owner)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	rec, err := identityOf(node, der)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	err = writeIdentity(ctx, s.update, func(tx *store.Tx) error {
		if _, why := s.checkInvite(tx, id, secret, node, req.GetControl()); why != "" {
			return status.Errorf(codes.PermissionDenied, "enrolment of node %q refused: %s", node, inviteRefusal(why))
		}
		lab.DeleteNodeInvite(tx, id)
		return lab.PutNodeIdentity(tx, rec) // a new identity: not removed
	})
	if err != nil {
		if status.Code(err) == codes.PermissionDenied {
			s.refused.Add(node, "invite_used")
		}
		return nil, enrollWriteErr(err)
	}
	s.log.Info("node enrolled with an invite", "node", node, "owner", inv.Owner, "kind", rec.Kind, "from", from, "serial", rec.Serial)
	return &labv1.EnrollResponse{Certificate: der, Ca: s.pki.ca.Cert.Raw, GossipKeys: s.enrollGossipKeys()}, nil
}

// checkInvite finds invite id in g and checks it for node: why is the
// refusal's reason ("" when it is valid).
func (s *controlServer) checkInvite(g lab.Getter, id, secret, node string, control bool) (lab.NodeInvite, string) {
	inv, ok := lab.GetNodeInvite(g, id)
	switch {
	case !ok:
		return inv, "no_invite"
	case subtle.ConstantTimeCompare(inv.Hash[:], hashOf(secret)) != 1:
		return inv, "bad_token"
	case !s.now().Before(inv.Expires):
		return inv, "invite_expired"
	case inv.Node != node:
		return inv, "wrong_node"
	case inv.Control != control:
		return inv, "wrong_kind"
	}
	return inv, ""
}

func hashOf(secret string) []byte { h := identity.HashSecret(secret); return h[:] }

// inviteRefusal is what a refused invited enrolment is told, by reason.
func inviteRefusal(why string) string {
	switch why {
	case "no_invite":
		return "its invite was used already or never existed: ask an admin for a new one (labctl node invite)"
	case "bad_token":
		return "the token does not match its invite"
	case "invite_expired":
		return "its invite expired: ask an admin for a new one (labctl node invite)"
	case "wrong_node":
		return "the invite is for another node name: start labd with the --name the invite names"
	case "wrong_kind":
		return "the invite is for another kind of node: --control must match the invite's (labctl node invite --control)"
	}
	return why
}

// refuse counts and logs a refused enrolment and is its PermissionDenied.
func (s *controlServer) refuse(node, from, reason, format string, args ...any) error {
	if s.refused.Add(node, reason) {
		s.log.Warn("enrolment refused", "node", node, "from", from, "reason", reason)
	}
	return status.Errorf(codes.PermissionDenied, format, args...)
}

// enrollWriteErr is the status of a failed identity write.
func enrollWriteErr(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Errorf(codes.Unavailable, "enrolment: %v: try again", err)
}
