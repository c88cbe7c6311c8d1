package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/follow"
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

// enrolWith enrols with node m: it learns the CA certificate from a
// handshake pinned to m's CA hash, proves it holds the cluster key over
// its request and that certificate, and checks that the certificate it
// gets names it and is from the pinned CA before it keeps it.
func (p *pki) enrolWith(ctx context.Context, m cluster.Member, clusterKey []byte) error {
	ctx, cancel := context.WithTimeout(ctx, enrolTimeout)
	defer cancel()
	pin := m.Meta.CAHash
	caCert, err := pinnedCA(ctx, m.Meta.APIAddr, pin)
	if err != nil {
		return err
	}
	key, csr, err := p.newRequest()
	if err != nil {
		return err
	}
	req := &labv1.EnrollRequest{Node: p.node, Csr: csr, Control: p.control}
	if len(clusterKey) > 0 {
		req.Proof = auth.EnrollProof(clusterKey, csr, caCert.Raw)
	}
	conn, err := grpc.NewClient(m.Meta.APIAddr, grpc.WithTransportCredentials(credentials.NewTLS(auth.PinnedTLS(pin, nil))))
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
		return fmt.Errorf("enrol: the CA %s sent is not the pinned one %s", m.Name, pin)
	}
	cert, err := x509.ParseCertificate(resp.GetCertificate())
	if err != nil {
		return fmt.Errorf("enrol: the certificate %s sent: %w", m.Name, err)
	}
	if why := auth.RenewReason(cert, ca, p.node, time.Now(), p.ips, p.dns); why != "" {
		return fmt.Errorf("enrol: the certificate %s sent is unusable: %s", m.Name, why)
	}
	return p.store(key, cert.Raw, ca)
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
	log        *slog.Logger
}

// Enroll signs the calling node's certificate request, if it proves it
// holds the cluster key (or, in a cluster without one, calls from
// loopback).
func (s *controlServer) Enroll(ctx context.Context, req *labv1.EnrollRequest) (*labv1.EnrollResponse, error) {
	ca := s.pki.ca
	if ca == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s does not hold the cluster CA's key: enrol with the control node that formed the cluster", s.pki.node)
	}
	from := "unknown"
	if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
		from = pr.Addr.String()
	}
	if len(s.clusterKey) > 0 {
		if !auth.VerifyEnrollProof(s.clusterKey, req.GetCsr(), ca.Cert.Raw, req.GetProof()) {
			return nil, status.Errorf(codes.PermissionDenied, "enrolment of node %q refused: its proof does not match this cluster's key (give it the same --cluster-key)", req.GetNode())
		}
	} else if !loopbackPeer(from) {
		return nil, status.Errorf(codes.PermissionDenied, "enrolment of node %q refused: this cluster has no --cluster-key, so only nodes on loopback may enrol", req.GetNode())
	}
	der, err := ca.SignNode(req.GetCsr(), req.GetNode(), req.GetControl())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.log.Info("node enrolled", "node", req.GetNode(), "control", req.GetControl(), "from", from)
	return &labv1.EnrollResponse{Certificate: der, Ca: ca.Cert.Raw}, nil
}

// loopbackPeer reports whether a caller's address is on loopback.
func loopbackPeer(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
