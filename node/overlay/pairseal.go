package overlay

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"
)

// Sealing per pair of nodes (docs/security.md, "the overlay knows the
// sender"). Where the cluster key (seal.go) lets any member seal as any
// other, here the sender of every packet is known: each ordered pair of
// nodes (sender, receiver) has its own AES-256-GCM key, derived from an
// ECDH of the two nodes' certificate keys, and a datagram is
//
//	sender id (4) || counter (8) || GENEVE header || AES-256-GCM(inner packet) || tag (16)
//
// The sender id, counter and GENEVE header are the additional data: in the
// clear (the receiver needs the id to pick the key, and the counter to
// check for replays before it decrypts) and authenticated. The overhead
// is SealOverhead, as with the cluster key. The nonce is four zero bytes
// and the counter: each direction has its own key, so a counter never
// repeats under one key as long as the sender's counter only goes up.
//
// The counter starts at the sender's clock in nanoseconds when the pair is
// made and counts one per packet: a restarted node, whose pair keys are
// the same (they come from its certificate key), starts above every
// counter it used before, without storing anything, unless its clock went
// back or it sent more than a packet per nanosecond. A new epoch (the
// control plane's, after a node is removed) gives new keys.
//
// The receiver keeps a replay window per sender (replay.go).
const (
	// PairHeaderLen is the sender id and the counter before the GENEVE
	// header.
	PairHeaderLen = 4 + 8

	pairSalt  = "labnet overlay pair v1"
	pairLabel = "labnet overlay AES-256-GCM sender to receiver v1"
)

// NodeID is the sender id of the node named name: the first four bytes
// of SHA-256 over a label and the name. Derived, not assigned, so that
// every node computes every other's without a registry or an extra record
// in the state; two names that collide are refused by whoever builds the
// peer set (PeerSet), which for a class of 30 nodes happens with odds of
// about one in ten million.
func NodeID(name string) uint32 {
	h := sha256.Sum256([]byte("labnet node id v1\x00" + name))
	return binary.BigEndian.Uint32(h[:4])
}

// Local is this node as the pairwise sealing sees it: its name and its
// certificate's key (P-256).
type Local struct {
	Name string
	Key  *ecdsa.PrivateKey
}

// Peer is another node to which this node seals, and from which it opens,
// per pair: the two keys (one per direction), this node's counter for it
// and its replay window. It is safe for concurrent use by senders; the
// receive path is the Conn's alone.
type Peer struct {
	node    string
	id      uint32
	selfID  uint32
	pub     []byte // the peer's public key (uncompressed point) and
	epoch   uint64 // the epoch the keys were made for: Same compares them
	seal    cipher.AEAD
	open    cipher.AEAD
	counter atomic.Uint64
	window  replayWindow

	received, replayed, tooOld, badTag atomic.Uint64
	notOnNetwork, spoofed              atomic.Uint64
}

// NewPeer makes the pair of this node (self) and node, whose
// certificate's public key is pub, for epoch. Both nodes compute the same
// ECDH secret (SP 800-56A), and HKDF-SHA256 (RFC 5869) over it, the epoch
// and the two names, sender first, gives the key of each direction.
func NewPeer(self Local, node string, pub *ecdsa.PublicKey, epoch uint64) (*Peer, error) {
	if self.Key == nil || pub == nil {
		return nil, fmt.Errorf("overlay: pair with %s: no key", node)
	}
	if node == self.Name || node == "" {
		return nil, fmt.Errorf("overlay: pair with %q: not another node", node)
	}
	priv, err := self.Key.ECDH()
	if err != nil {
		return nil, fmt.Errorf("overlay: pair with %s: own key: %w", node, err)
	}
	theirs, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("overlay: pair with %s: its key: %w", node, err)
	}
	if priv.Curve() != theirs.Curve() {
		return nil, fmt.Errorf("overlay: pair with %s: keys on different curves", node)
	}
	secret, err := priv.ECDH(theirs)
	if err != nil {
		return nil, fmt.Errorf("overlay: pair with %s: ECDH: %w", node, err)
	}
	p := &Peer{node: node, id: NodeID(node), selfID: NodeID(self.Name), pub: theirs.Bytes(), epoch: epoch}
	if p.seal, err = pairAEAD(secret, epoch, self.Name, node); err != nil {
		return nil, fmt.Errorf("overlay: pair with %s: %w", node, err)
	}
	if p.open, err = pairAEAD(secret, epoch, node, self.Name); err != nil {
		return nil, fmt.Errorf("overlay: pair with %s: %w", node, err)
	}
	p.counter.Store(uint64(time.Now().UnixNano()))
	return p, nil
}

// pairAEAD is the key of the direction from sender to receiver.
func pairAEAD(secret []byte, epoch uint64, sender, receiver string) (cipher.AEAD, error) {
	salt := binary.BigEndian.AppendUint64([]byte(pairSalt), epoch)
	// Names cannot hold a NUL (lab.PutNodeIdentity), so the two are
	// unambiguous.
	info := pairLabel + "\x00" + sender + "\x00" + receiver
	key, err := hkdf.Key(sha256.New, secret, salt, info, 32)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	return cipher.NewGCM(block)
}

// Node is the peer's node name; ID its sender id.
func (p *Peer) Node() string { return p.node }
func (p *Peer) ID() uint32   { return p.id }

// Same reports whether p was made from pub (the peer's certificate key)
// and epoch: a peer set that is built again keeps such a Peer, with its
// counter and replay window.
func (p *Peer) Same(pub *ecdsa.PublicKey, epoch uint64) bool {
	if pub == nil || epoch != p.epoch {
		return false
	}
	k, err := pub.ECDH()
	return err == nil && string(k.Bytes()) == string(p.pub)
}

// PeerCounters count what a Peer's receive path did with its datagrams:
// opened, or dropped as a replay, too old for the window, or failing the
// tag (which includes datagrams from another node claiming this one's id);
// and of those opened, how many a Link's admit function refused
// (WithAdmit): not on the network, or a spoofed source.
type PeerCounters struct {
	Received, Replayed, TooOld, BadTag uint64
	NotOnNetwork, SpoofedSource        uint64
}

// Counters returns the peer's counters.
func (p *Peer) Counters() PeerCounters {
	return PeerCounters{
		Received: p.received.Load(), Replayed: p.replayed.Load(), TooOld: p.tooOld.Load(), BadTag: p.badTag.Load(),
		NotOnNetwork: p.notOnNetwork.Load(), SpoofedSource: p.spoofed.Load(),
	}
}

// Seal appends pkt (a GENEVE packet) sealed for p to dst.
func (p *Peer) Seal(dst, pkt []byte) []byte { return p.sealParts(dst, nil, pkt) }

func (p *Peer) sealParts(dst, head, body []byte) []byte {
	start := len(dst)
	ctr := p.counter.Add(1)
	dst = binary.BigEndian.AppendUint32(dst, p.selfID)
	dst = binary.BigEndian.AppendUint64(dst, ctr)
	off := len(dst)
	dst = append(append(dst, head...), body...)
	hl := min(genevePrefixLen(dst[off:]), len(dst)-off)
	var nonce [NonceSize]byte
	binary.BigEndian.PutUint64(nonce[4:], ctr)
	ad := dst[start : off+hl]
	return p.seal.Seal(dst[:off+hl], nonce[:], dst[off+hl:], ad)
}

// genevePrefixLen is the GENEVE header's length as its first byte says
// (8 when there is no first byte).
func genevePrefixLen(b []byte) int {
	if len(b) == 0 {
		return HeaderMinLen
	}
	return HeaderMinLen + int(b[verOptLen]&0x3f)*4
}

// Peers are the nodes this node seals to and opens from per pair. Conn
// asks on every write and every received datagram, so both must be quick
// lookups that do not block (a copy-on-write PeerSet).
type Peers interface {
	// ByAddr is the peer whose overlay address is addr, or nil when that
	// address is sealed with the cluster key (or not at all): a node
	// without a certificate, in loopback development.
	ByAddr(addr netip.AddrPort) *Peer
	// ByID is the peer whose sender id is id, or nil.
	ByID(id uint32) *Peer
}

// PeerSet is a fixed set of peers, by overlay address and by id. Build a
// new one when the nodes change.
type PeerSet struct {
	byAddr map[netip.AddrPort]*Peer
	byID   map[uint32]*Peer
}

// ErrIDCollision is returned by NewPeerSet when two nodes' names give one
// sender id: neither can be told from the other, so both are left out.
var ErrIDCollision = errors.New("overlay: two nodes have one sender id")

// NewPeerSet indexes peers, whose overlay addresses are addrs (by node
// name; a peer with no address is opened from but not sealed to). Peers
// whose ids collide with each other or with self's are left out, and the
// error names them; the set is usable anyway.
func NewPeerSet(self string, peers []*Peer, addrs map[string]netip.AddrPort) (*PeerSet, error) {
	s := &PeerSet{byAddr: map[netip.AddrPort]*Peer{}, byID: map[uint32]*Peer{}}
	selfID := NodeID(self)
	var errs []error
	count := map[uint32]int{selfID: 1}
	for _, p := range peers {
		count[p.id]++
	}
	for _, p := range peers {
		if count[p.id] > 1 {
			errs = append(errs, fmt.Errorf("%w: %s (%08x)", ErrIDCollision, p.node, p.id))
			continue
		}
		s.byID[p.id] = p
		if a, ok := addrs[p.node]; ok {
			s.byAddr[netip.AddrPortFrom(a.Addr().Unmap(), a.Port())] = p
		}
	}
	return s, errors.Join(errs...)
}

func (s *PeerSet) ByAddr(addr netip.AddrPort) *Peer { return s.byAddr[addr] }
func (s *PeerSet) ByID(id uint32) *Peer             { return s.byID[id] }

// Peers returns the peers of the set.
func (s *PeerSet) Peers() []*Peer {
	out := make([]*Peer, 0, len(s.byID))
	for _, p := range s.byID {
		out = append(out, p)
	}
	return out
}

// openVerdict is why openPair dropped a datagram.
type openVerdict uint8

const (
	openOK openVerdict = iota
	openMalformed
	openUnknownSender
	openReplay
	openTooOld
	openBadTag
)

// openPair checks and decrypts a datagram sealed per pair, in place, and
// returns the GENEVE packet (a slice of d) and its sender. The counter is
// checked against the sender's window before the tag, and recorded only
// once the tag verifies (RFC 4303 §3.4.3). It never panics, whatever d is.
func openPair(peers Peers, d []byte) ([]byte, *Peer, openVerdict) {
	if len(d) < PairHeaderLen+HeaderMinLen+TagSize {
		return nil, nil, openMalformed
	}
	p := peers.ByID(binary.BigEndian.Uint32(d))
	if p == nil {
		return nil, nil, openUnknownSender
	}
	hl := genevePrefixLen(d[PairHeaderLen:])
	body := PairHeaderLen + hl
	if body+TagSize > len(d) {
		return nil, p, openMalformed
	}
	ctr := binary.BigEndian.Uint64(d[4:])
	switch p.window.check(ctr) {
	case replayDuplicate:
		p.replayed.Add(1)
		return nil, p, openReplay
	case replayTooOld:
		p.tooOld.Add(1)
		return nil, p, openTooOld
	}
	var nonce [NonceSize]byte
	binary.BigEndian.PutUint64(nonce[4:], ctr)
	pt, err := p.open.Open(d[body:body], nonce[:], d[body:], d[:body])
	if err != nil {
		p.badTag.Add(1)
		return nil, p, openBadTag
	}
	p.window.accept(ctr)
	p.received.Add(1)
	return d[PairHeaderLen : body+len(pt)], p, openOK
}
