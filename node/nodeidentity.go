package node

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/control"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
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
		Serial: cert.SerialNumber.Text(16), NotAfter: cert.NotAfter,
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

// recordOwnIdentity makes sure, on a node that holds the CA (it signs its
// own certificate), that the control plane has its identity record for
// its current certificate: it writes the record once it leads, and keeps
// trying until the record is there or ctx ends.
func (d *Daemon) recordOwnIdentity(ctx context.Context) {
	if d.pki.ca == nil {
		return
	}
	der := d.pki.certDER()
	if der == nil {
		return
	}
	want, err := identityOf(d.cfg.Name, der)
	if err != nil {
		d.log.Error("this node's certificate", "err", err)
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if have, ok := lab.GetNodeIdentity(lab.StoreGetter{St: d.store}, want.Name); ok && (have.Serial == want.Serial || have.Removed) {
			if have.Removed {
				d.log.Error("this node was removed (labctl node remove): its identity is not recorded again")
			}
			return
		}
		if d.control.isLeader() {
			_, err := d.control.Update(ctx, func(tx *store.Tx) error { return lab.PutNodeIdentity(tx, want) })
			if err == nil {
				d.log.Info("recorded this node's identity", "serial", want.Serial, "kind", want.Kind)
				return
			}
			d.log.Warn("recording this node's identity", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
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
