package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"google.golang.org/grpc"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/cluster"
)

// The daemon's wiring of the gossip keys (gossipkeys.go).

// setupGossipKeys installs the keys this node starts gossip with
// (initialGossipKeys), before the cluster starts.
func (d *Daemon) setupGossipKeys() error {
	keys, err := initialGossipKeys(d.cfg, d.pki.ca, d.log.With("component", "cluster"))
	if err != nil {
		return err
	}
	if len(d.cfg.Key) > 0 { // for compatibility: after the kept keys
		if k := cluster.KeyOf(d.cfg.Key); !slices.ContainsFunc(keys, func(x []byte) bool { return bytes.Equal(x, k) }) {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		if err := d.members.cl.SetKeys(keys); err != nil {
			return fmt.Errorf("gossip keys: %w", err)
		}
	}
	d.keys = newGossipKeys(d.cfg.Name, d.cfg.DataDir, d.members.cl, d.store, d.log.With("component", "gossipkeys"))
	d.packets.encrypted = func() bool { return len(d.keys.current()) > 0 }
	return nil
}

// wireGossipKeys gives the keys' part the control plane (to lead their
// rotation), the API's peer connections (to ask a control node for them)
// and the ControlService that hands them out.
func (d *Daemon) wireGossipKeys(srv *controlServer) {
	k := d.keys
	k.isLeader, k.update = d.control.isLeader, d.control.Update
	k.ask = askVia(func(addr string) (grpc.ClientConnInterface, error) { return d.api.peers.dialAddr(addr) }) // peers: set by register, after this
	k.hasCert = d.pki.hasCert
	if d.cfg.Enroll != "" {
		if tok, err := auth.ParseEnrollToken(d.cfg.Enroll); err == nil {
			k.askAlso = append(k.askAlso, tok.API)
		}
	}
	for _, a := range joinAPIs(d.cfg) {
		if !slices.Contains(k.askAlso, a) {
			k.askAlso = append(k.askAlso, a)
		}
	}
	srv.keys = k
}

// enrolBeforeGossip enrols a node started with an invite (--enroll)
// before it gossips, and installs the gossip keys Enroll handed it: a node
// with no certificate yet, and a node an admin removed (DATA/removed names
// its certificate), which comes back with a new invite and a new key, its
// old files replaced. It reports whether it enrolled; an error stops labd
// (the invite was refused), and so does ctx ending meanwhile. A removed
// node whose invite is refused (the one it was first enrolled with, used
// up) goes on as removed, running nothing, and says what would bring it
// back.
func (d *Daemon) enrolBeforeGossip(ctx context.Context) (bool, error) {
	removed := d.removed.is()
	if d.cfg.Enroll == "" || d.pki.hasCert() && !removed {
		return false, nil
	}
	if err := d.enrolInvited(ctx); err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		if removed {
			d.log.Error("this node was removed and its --enroll invite was refused: ask an admin for a new invite (labctl node invite) and start labd with its --enroll line", "err", err)
			return false, nil
		}
		return false, err
	}
	if removed {
		d.removed.clear()
	}
	d.control.publishCA(d.pki.caHash())
	d.installEnrolledKeys()
	return true, nil
}

// installEnrolledKeys installs the keys enrolment kept in
// DATA/gossip.keys.
func (d *Daemon) installEnrolledKeys() {
	keys, err := loadGossipKeys(d.cfg.DataDir)
	if err == nil && len(keys) > 0 {
		err = d.members.cl.SetKeys(keys)
	}
	if err != nil {
		d.log.Warn("installing the gossip keys from enrolment", "err", err)
	}
}

// startMembers starts the cluster (members.start). A node that has a
// certificate and whose keys the others refuse was off while the keys
// rotated: it asks a control node for the current ones and goes on (the
// cluster joins again every second) rather than stopping.
func (d *Daemon) startMembers(ctx context.Context) error {
	err := d.members.start(ctx)
	var km *cluster.KeyMismatchError
	if !errors.As(err, &km) {
		return err
	}
	if !d.pki.hasCert() {
		if len(d.cfg.Key) > 0 {
			d.log.Warn("if a node was removed from this cluster, its gossip keys have changed since and the cluster key no longer opens it: enrol this node with an invite (labctl node invite)")
		}
		return err
	}
	if d.keys.fetch(ctx) {
		d.log.Info("this node's gossip keys were stale: joining with the current ones", "refused_by", km.Addr)
		return nil
	}
	d.log.Warn("the cluster refuses this node's gossip keys, and no control node gave it the current ones yet: trying again", "at", km.Addr, "err", km.Err)
	return nil
}

// noGossipKey says why a node without --cluster-key has no way to get a
// gossip key ("" when it has one): it holds or makes the cluster CA (and
// makes the first key), enrols with an invite (Enroll hands the keys),
// kept keys in DATA/gossip.keys, or has a certificate to ask a control
// node with (GossipKeys).
func (c *Config) noGossipKey() string {
	switch {
	case c.CACert != "", c.bootstraps(), c.Enroll != "":
		return ""
	}
	for _, f := range []string{auth.CAKeyFile, gossipKeysFile, auth.NodeCertFile} {
		if exists(filepath.Join(c.DataDir, f)) {
			return ""
		}
	}
	return "this node has no way to get the gossip key (no invite, no cluster CA, no " + gossipKeysFile + " or certificate in " + c.DataDir + ")"
}
