package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// Gossip bound to certificates (docs/security.md, "Gossip bound to
// certificates"). A node with a certificate signs its gossip metadata
// with the certificate's key (ECDSA P-256), over its name, its gossip
// address and port and the rest of its metadata (signedDigest), so that
// no other node can be alive under its name, or at another address. Every
// node checks what it hears against the node identity records of its
// replica (Identities) in memberlist's alive and merge delegates.
//
// The rule (checkPeer): a node checks its peers once its own replica
// holds its own identity record, that is once it is enrolled and its
// replica has caught up with that. Until then it admits every peer as it
// did before (loopback development with no CA, a node before it enrols,
// tests without identities): it trusts nobody with anything then. Once it
// checks, a peer is refused when it has no record and records are
// required (Config.RequireIdentity; "unknown_node": not replicated yet,
// the peer retries), when its record is removed
// ("removed"), when its metadata is unsigned ("unsigned") or when the
// signature does not verify with its record's key ("bad_signature").

// Refusal reasons, as counted and logged.
const (
	ReasonUnknownNode  = "unknown_node"
	ReasonRemoved      = "removed"
	ReasonUnsigned     = "unsigned"
	ReasonBadSignature = "bad_signature"
	ReasonBadMeta      = "bad_meta" // metadata that does not decode
	// ReasonClaimsControl: a member's metadata says it is a control
	// node, leads the control plane, or holds the CA (Kinds).
	ReasonClaimsControl = "claims_control"
)

// Identities are the node identity records a node checks its peers
// against (node/ reads them from its replica, lab.GetNodeIdentity). They
// are called from memberlist's goroutines, so must not block.
type Identities interface {
	// Identity returns the public key of node's certificate and whether
	// its record is removed; ok is false when the local replica has no
	// record for node.
	Identity(node string) (key crypto.PublicKey, removed, ok bool)
}

// Kinds is what Identities may also tell: whether node's identity record
// is a control node's. A node whose record is a member's is refused
// (ReasonClaimsControl) when its metadata claims what only control nodes
// may: the control role, a raft address, leading, or holding the CA.
// Members would otherwise send their writes, and their users' tokens, to
// a member that says it leads, and new nodes would enrol with one that
// says it holds the CA.
type Kinds interface {
	IsControl(node string) bool
}

// claimsControl reports whether metadata body claims what only a control
// node may.
func claimsControl(body []byte) bool {
	var m NodeMeta
	if json.Unmarshal(body, &m) != nil {
		return true
	}
	return m.Role == RoleControl || m.RaftAddr != "" || m.Leader || m.LeaderTerm != 0 || m.CAKey
}

// Signer returns the key this node signs its metadata with, or nil while
// it has no certificate (its metadata is then unsigned).
type Signer func() crypto.Signer

// signContext separates these signatures from any other use of a node's
// key.
const signContext = "labnet gossip meta v1\x00"

// signedDigest is what a node signs: SHA-256 over signContext, then the
// name, the gossip address (16 bytes, IPv4 mapped) and port, and the
// metadata's JSON, each but the address and port preceded by its length
// (2 bytes, big-endian).
func signedDigest(name string, ip net.IP, port uint16, body []byte) ([32]byte, error) {
	ip16 := ip.To16()
	if ip16 == nil {
		return [32]byte{}, fmt.Errorf("gossip address %v is not an IP address", ip)
	}
	if len(name) > 0xffff || len(body) > 0xffff {
		return [32]byte{}, errors.New("name or metadata too long")
	}
	h := sha256.New()
	h.Write([]byte(signContext))
	var n [2]byte
	binary.BigEndian.PutUint16(n[:], uint16(len(name)))
	h.Write(n[:])
	h.Write([]byte(name))
	h.Write(ip16)
	binary.BigEndian.PutUint16(n[:], port)
	h.Write(n[:])
	binary.BigEndian.PutUint16(n[:], uint16(len(body)))
	h.Write(n[:])
	h.Write(body)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}

// signMeta signs body (a metadata's JSON) for name at ip:port.
func signMeta(key crypto.Signer, name string, ip net.IP, port uint16, body []byte) ([]byte, error) {
	d, err := signedDigest(name, ip, port, body)
	if err != nil {
		return nil, fmt.Errorf("sign node metadata: %w", err)
	}
	sig, err := key.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign node metadata: %w", err)
	}
	return sig, nil
}

// verifyMeta checks sig (ASN.1, as crypto.Signer makes it) over body for
// name at ip:port with key.
func verifyMeta(key crypto.PublicKey, name string, ip net.IP, port uint16, body, sig []byte) bool {
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return false
	}
	d, err := signedDigest(name, ip, port, body)
	if err != nil {
		return false
	}
	return ecdsa.VerifyASN1(pub, d[:], sig)
}

// checkPeer decides whether node name, heard of at ip:port with metadata
// meta, is admitted: "" when it is, else the reason it is refused (the
// rule is in this file's first comment).
func (c *Cluster) checkPeer(name string, ip net.IP, port uint16, meta []byte) string {
	ids := c.cfg.Identities
	if ids == nil || name == c.cfg.Name {
		return ""
	}
	if _, _, checking := ids.Identity(c.cfg.Name); !checking {
		return ""
	}
	key, removed, ok := ids.Identity(name)
	switch {
	case !ok && c.cfg.RequireIdentity:
		return ReasonUnknownNode
	case !ok:
		return "" // not required yet (Config.RequireIdentity)
	case removed:
		return ReasonRemoved
	}
	body, sig, err := splitMeta(meta)
	switch {
	case err != nil:
		return ReasonBadMeta
	case sig == nil:
		return ReasonUnsigned
	}
	if !c.verified.has(name, ip, port, meta, key) {
		if !verifyMeta(key, name, ip, port, body, sig) {
			return ReasonBadSignature
		}
		c.verified.add(name, ip, port, meta, key)
	}
	if isMember(ids, name) && claimsControl(body) {
		return ReasonClaimsControl
	}
	return ""
}

// isMember reports whether ids tells that node's record is a member's.
func isMember(ids Identities, node string) bool {
	k, ok := ids.(Kinds)
	return ok && !k.IsControl(node)
}

// verifiedMetas remembers the last metadata verified for each node, with
// the key it verified with, so that the same news heard again (gossip
// repeats it, push/pull and recheck see it again) is not verified again.
type verifiedMetas struct {
	mu sync.Mutex
	m  map[string]verifiedMeta
}

type verifiedMeta struct {
	addr string // ip:port
	meta string
	key  crypto.PublicKey
}

// maxVerified bounds the metadata remembered.
const maxVerified = 4096

func (v *verifiedMetas) has(name string, ip net.IP, port uint16, meta []byte, key crypto.PublicKey) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[name]
	if !ok || e.meta != string(meta) || e.addr != net.JoinHostPort(ip.String(), strconv.Itoa(int(port))) {
		return false
	}
	k, ok := e.key.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(key)
}

func (v *verifiedMetas) add(name string, ip net.IP, port uint16, meta []byte, key crypto.PublicKey) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerified {
		v.m = map[string]verifiedMeta{}
	}
	v.m[name] = verifiedMeta{addr: net.JoinHostPort(ip.String(), strconv.Itoa(int(port))), meta: string(meta), key: key}
}
