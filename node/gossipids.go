package node

import (
	"crypto"
	"crypto/x509"
	"sync"

	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/lab"
)

// gossipIdentities are the node identity records of this node's replica
// as the cluster checks its peers' gossip against them (node/cluster's
// identity.go): the public key of each node's certificate, and whether
// the node was removed. Parsed keys are kept by node and serial, since
// memberlist asks on every alive message.
type gossipIdentities struct {
	g lab.Getter

	mu   sync.Mutex
	keys map[string]parsedKey // by node
}

type parsedKey struct {
	serial string
	key    crypto.PublicKey
}

var (
	_ cluster.Identities = (*gossipIdentities)(nil)
	_ cluster.Kinds      = (*gossipIdentities)(nil)
)

func newGossipIdentities(g lab.Getter) *gossipIdentities {
	return &gossipIdentities{g: g, keys: map[string]parsedKey{}}
}

// Identity is node's record: its certificate's public key and whether it
// is removed. A record whose certificate does not parse is reported with
// no key, so its signatures never verify.
func (ids *gossipIdentities) Identity(node string) (crypto.PublicKey, bool, bool) {
	rec, ok := lab.GetNodeIdentity(ids.g, node)
	if !ok {
		return nil, false, false
	}
	ids.mu.Lock()
	defer ids.mu.Unlock()
	if k, ok := ids.keys[node]; ok && k.serial == rec.Serial {
		return k.key, rec.Removed, true
	}
	var key crypto.PublicKey
	if cert, err := x509.ParseCertificate(rec.Cert); err == nil {
		key = cert.PublicKey
	}
	if len(ids.keys) >= maxParsedKeys {
		clear(ids.keys)
	}
	ids.keys[node] = parsedKey{serial: rec.Serial, key: key}
	return key, rec.Removed, true
}

// IsControl reports whether node's record is a control node's.
func (ids *gossipIdentities) IsControl(node string) bool {
	rec, ok := lab.GetNodeIdentity(ids.g, node)
	return ok && rec.Kind == "control"
}

// maxParsedKeys bounds the parsed keys kept (records come and go).
const maxParsedKeys = 4096

// gossipSigner is the key this node signs its gossip with: its
// certificate's (DATA/node.key, as the pki loaded it or enrolment
// replaced it), nil while it has none.
func (p *pki) gossipSigner() crypto.Signer {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cert == nil {
		return nil
	}
	s, _ := p.cert.PrivateKey.(crypto.Signer)
	return s
}
