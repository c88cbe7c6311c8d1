package node

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/control"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Node identity records (CONTRACT14: every node that has a certificate
// has one): whoever signs a node certificate writes the node's record
// "nodeids/{node}" through the control plane in the same step. The
// signer is a CA holder, normally the control node that formed the
// cluster and leads it. A CA holder that does not lead answers Enroll as
// a write the API forwards (api.NotLeader): the whole call is replayed at
// the leader, which, in a StatefulSet, holds the CA too. A node records
// its own certificate's identity with the leader's RecordIdentity
// (recordidentity.go).

// updater commits a write to the desired state (controlPlane.Update).
type updater func(ctx context.Context, fn func(*store.Tx) error) (uint64, error)

// identityOf is the identity record of a node certificate (DER).
func identityOf(node string, certDER []byte) (lab.NodeIdentity, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return lab.NodeIdentity{}, fmt.Errorf("node identity of %s: %w", node, err)
	}
	kind := auth.NodeKind(cert)
	if kind == "" {
		kind = auth.KindMember
	}
	owner, _ := auth.OwnerOf(cert)
	return lab.NodeIdentity{
		Name: node, Kind: kind, Owner: owner, Cert: certDER,
		Serial: cert.SerialNumber.Text(16), NotAfter: cert.NotAfter, NotBefore: cert.NotBefore,
	}, nil
}

// writeIdentity commits fn (which writes an identity record) through
// update. When this node does not lead, the error is api's NotLeader, so
// that the API passes the whole call on to the leader, carrying md
// (metadata pairs) with it.
func writeIdentity(ctx context.Context, update updater, fn func(*store.Tx) error, md ...string) error {
	_, err := update(ctx, fn)
	var nl *control.NotLeaderError
	if errors.As(err, &nl) {
		return api.NotLeader(nl.Leader, nl.Controls, md...)
	}
	return err
}

// recordOwnIdentity makes sure that the control plane has this node's
// identity record for its current certificate: a CA holder signs its own
// (at start, and again when its address changed), and a node enrolled
// before records existed has none. It asks the leader to record it
// (RecordIdentity; writing it here when this node leads) until the
// leader has, then waits for the record in the replica, until ctx ends.
// A refusal (removed, or the name bound to another certificate) is
// logged and ends it: every peer then refuses this node, as it should.
func (d *Daemon) recordOwnIdentity(ctx context.Context) {
	der := d.pki.certDER()
	if der == nil {
		return
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		d.log.Error("this node's certificate", "err", err)
		return
	}
	want, err := identityOf(d.cfg.Name, der)
	if err != nil {
		d.log.Error("this node's certificate", "err", err)
		return
	}
	// At start no leader is known yet, and the node that forms the
	// cluster leads about half a second later: peers refuse it until its
	// record is written, so try again as soon as this node's raft state
	// changes, often at first otherwise (50 ms, doubling up to a second),
	// and warn only after 10 s of trying.
	wait := 50 * time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	recorded, warned := false, time.Now()
	leaderChanged := d.control.leaderChanged()
	for {
		if have, ok := lab.GetNodeIdentity(lab.StoreGetter{St: d.store}, want.Name); ok && (have.Serial == want.Serial || have.Removed) {
			if have.Removed {
				d.log.Error("this node was removed (labctl node remove): its identity is not recorded again")
			}
			return
		}
		if !recorded {
			err := d.recordAtLeader(ctx, want, cert)
			switch {
			case err == nil:
				recorded = true
				d.log.Info("recorded this node's identity", "serial", want.Serial, "kind", want.Kind)
			case status.Code(err) == codes.PermissionDenied:
				d.log.Error("this node's identity is refused: peers will refuse it", "err", err)
				return
			case time.Since(warned) >= 10*time.Second:
				warned = time.Now()
				d.log.Warn("recording this node's identity: trying again", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			wait = min(2*wait, time.Second)
			timer.Reset(wait)
		case <-leaderChanged:
		}
		leaderChanged = d.control.leaderChanged()
	}
}

// recordTimeout bounds one RecordIdentity call at the leader.
const recordTimeout = 5 * time.Second

// recordAtLeader has the leader record rec (of this node's certificate
// cert): here when this node leads, else by RecordIdentity at the leader
// gossip names, called with this node's certificate (which is what the
// leader records).
func (d *Daemon) recordAtLeader(ctx context.Context, rec lab.NodeIdentity, cert *x509.Certificate) error {
	if d.control.isLeader() {
		_, err := d.control.Update(ctx, func(tx *store.Tx) error {
			why, write := recordVerdict(tx, rec, cert)
			switch {
			case why != "":
				return status.Errorf(codes.PermissionDenied, "the control plane's record of node %s refuses this certificate: %s", rec.Name, why)
			case !write:
				return errNoWrite
			}
			return lab.PutNodeIdentity(tx, rec)
		})
		if errors.Is(err, errNoWrite) {
			return nil
		}
		return err
	}
	leader, _ := d.control.gossipLeader()
	if leader == "" || leader == d.cfg.Name {
		return errors.New("no leader of the control plane is known yet")
	}
	conn, err := d.api.peers.dial(leader)
	if err != nil {
		return fmt.Errorf("leader %s: %w", leader, err)
	}
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	_, err = labv1.NewControlServiceClient(conn).RecordIdentity(ctx, &labv1.RecordIdentityRequest{})
	return err
}

// isMember reports whether this node's certificate is not a control
// node's (a member's, or one that records no kind): node/api then
// forwards calls with the caller's own token (api.Config.Member). A
// node without a certificate yet forwards nothing.
func (p *pki) isMember() bool {
	der := p.certDER()
	if der == nil {
		return true
	}
	cert, err := x509.ParseCertificate(der)
	return err != nil || auth.NodeKind(cert) != auth.KindControl
}
