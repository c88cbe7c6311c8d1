package node

import (
	"crypto/ecdsa"
	"crypto/x509"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/overlay"
	"github.com/labnet-dev/labnet/node/store"
)

// The overlay's view of the other nodes (docs/security.md, "the overlay
// knows the sender"): which nodes seal per pair and with which keys
// (pairPeers), which are refused for good, and which hosts each node runs
// on which networks with which addresses (netIndex). All three are built
// from the replica and the members, again after every change, and
// swapped in whole so that the receive path reads them without a lock.

// overlayEpoch is the epoch the pair keys are derived for. The design has
// the control plane record it and move it on when a node is removed; until
// it does, every pair key is for epoch 1 and a removed node's packets are
// refused by its identity's removed mark (refusedAddrs) instead.
const overlayEpoch = 1

// pairPeers is overlay.Peers over a PeerSet rebuilt when the identities,
// the members or this node's key change.
type pairPeers struct {
	set atomic.Pointer[overlay.PeerSet]
}

func (p *pairPeers) ByAddr(a netip.AddrPort) *overlay.Peer { return p.set.Load().ByAddr(a) }
func (p *pairPeers) ByID(id uint32) *overlay.Peer          { return p.set.Load().ByID(id) }

// buildPeers makes self's peer set: a node seals per pair with every other
// node whose identity record in the replica is there, not removed, and
// holds a P-256 certificate key, provided self's own record is there and
// names key (else the others would not seal per pair with self either,
// and self stays on the cluster key with everyone). old's peers whose key
// and epoch are the same are kept, with their counters and windows.
// removed are the names whose identity is removed: refused outright.
// pairOnly reports that self seals per pair (its own record names key):
// then a peer without a record gets no cluster-key fallback (the
// packet path refuses its packets: unknown_node).
func buildPeers(self string, key *ecdsa.PrivateKey, ids []lab.NodeIdentity, addrs map[string]netip.AddrPort, old *overlay.PeerSet, log *slog.Logger) (set *overlay.PeerSet, removed map[string]bool, pairOnly bool) {
	removed = map[string]bool{}
	pubs := map[string]*ecdsa.PublicKey{}
	selfOK := false
	for _, id := range ids {
		if id.Removed {
			removed[id.Name] = true
			continue
		}
		pub := certKey(id.Cert)
		if pub == nil {
			log.Warn("overlay: node identity without a P-256 certificate key: no per-pair sealing with it", "node", id.Name)
			continue
		}
		if id.Name == self {
			selfOK = key != nil && key.PublicKey.Equal(pub)
			continue
		}
		pubs[id.Name] = pub
	}
	if !selfOK {
		set, _ = overlay.NewPeerSet(self, nil, nil)
		return set, removed, false
	}
	kept := map[string]*overlay.Peer{}
	if old != nil {
		for _, p := range old.Peers() {
			kept[p.Node()] = p
		}
	}
	var peers []*overlay.Peer
	for name, pub := range pubs {
		if p := kept[name]; p != nil && p.Same(pub, overlayEpoch) {
			peers = append(peers, p)
			continue
		}
		p, err := overlay.NewPeer(overlay.Local{Name: self, Key: key}, name, pub, overlayEpoch)
		if err != nil {
			log.Warn("overlay: no per-pair key with a node", "node", name, "err", err)
			continue
		}
		peers = append(peers, p)
	}
	set, err := overlay.NewPeerSet(self, peers, addrs)
	if err != nil {
		log.Warn("overlay: nodes left out of per-pair sealing", "err", err)
	}
	return set, removed, true
}

// certKey is the P-256 public key of a certificate (DER), or nil.
func certKey(der []byte) *ecdsa.PublicKey {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil
	}
	if _, err := pub.ECDH(); err != nil {
		return nil
	}
	return pub
}

// ecdsaKey is the node's key as ECDSA, nil when it has none or another.
func ecdsaKey(k any) *ecdsa.PrivateKey {
	e, _ := k.(*ecdsa.PrivateKey)
	return e
}

// nodeKey is this node's certificate key, nil before it has one.
func (p *pki) nodeKey() *ecdsa.PrivateKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cert == nil {
		return nil
	}
	return ecdsaKey(p.cert.PrivateKey)
}

// readIdentities lists the node identities of the replica.
func readIdentities(st *store.Store) []lab.NodeIdentity { return lab.ListNodeIdentities(st) }
