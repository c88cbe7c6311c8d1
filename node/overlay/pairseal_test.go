package overlay

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/netip"
	"testing"
	"time"
)

func nodeKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testNodes is a few nodes with their keys.
type testNodes map[string]*ecdsa.PrivateKey

func newTestNodes(t testing.TB, names ...string) testNodes {
	n := testNodes{}
	for _, name := range names {
		n[name] = nodeKey(t)
	}
	return n
}

// pair is self's Peer for node.
func (n testNodes) pair(t testing.TB, self, node string, epoch uint64) *Peer {
	t.Helper()
	p, err := NewPeer(Local{Name: self, Key: n[self]}, node, &n[node].PublicKey, epoch)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// set is self's PeerSet of every other node, without addresses.
func (n testNodes) set(t testing.TB, self string, epoch uint64) *PeerSet {
	t.Helper()
	var peers []*Peer
	for name := range n {
		if name != self {
			peers = append(peers, n.pair(t, self, name, epoch))
		}
	}
	s, err := NewPeerSet(self, peers, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPairSealOpen(t *testing.T) {
	nodes := newTestNodes(t, "a", "b", "c")
	aToB := nodes.pair(t, "a", "b", 1)
	atB, atC := nodes.set(t, "b", 1), nodes.set(t, "c", 1)
	for _, pkt := range [][]byte{genevePacketV4, genevePacketV6} {
		sealed := aToB.Seal([]byte("prefix"), pkt)[len("prefix"):]
		if len(sealed) != len(pkt)+SealOverhead {
			t.Fatalf("sealed %d bytes into %d", len(pkt), len(sealed))
		}
		hl := Header(pkt).HeaderLength()
		if bytes.Contains(sealed, pkt[hl:]) {
			t.Error("sealed packet contains the inner packet")
		}
		if !bytes.Equal(sealed[PairHeaderLen:PairHeaderLen+hl], pkt[:hl]) {
			t.Error("the GENEVE header is not in the clear")
		}
		// C, with its own keys, cannot open what A sealed for B.
		if _, _, v := openPair(atC, bytes.Clone(sealed)); v != openBadTag {
			t.Errorf("opened at C: verdict %d, want bad tag", v)
		}
		got, from, v := openPair(atB, bytes.Clone(sealed))
		if v != openOK || from.Node() != "a" || !bytes.Equal(got, pkt) {
			t.Fatalf("open at B: % x from %v verdict %d", got, from, v)
		}
		// Once only.
		if _, _, v := openPair(atB, bytes.Clone(sealed)); v != openReplay {
			t.Errorf("replay: verdict %d", v)
		}
		// Any bit of the clear header changed fails the tag.
		for _, i := range []int{4, 11, PairHeaderLen + 5, PairHeaderLen + hl - 1} {
			bad := bytes.Clone(sealed)
			bad[i] ^= 1
			if _, _, v := openPair(atB, bad); v != openBadTag && v != openReplay {
				t.Errorf("byte %d altered: verdict %d", i, v)
			}
		}
	}
	if c := atB.ByID(NodeID("a")).Counters(); c.Received != 2 || c.Replayed < 2 {
		t.Errorf("B's counters for A: %+v", c)
	}
}

// TestPairDirections: the two directions of a pair have different keys,
// so B cannot reflect A's packet back to A, and another epoch is another
// key.
func TestPairDirections(t *testing.T) {
	nodes := newTestNodes(t, "a", "b")
	sealed := nodes.pair(t, "a", "b", 1).Seal(nil, genevePacketV4)
	// B's packet to A claims B's id; rewrite the id to B's and send to A.
	reflected := bytes.Clone(sealed)
	copy(reflected, []byte{byte(NodeID("b") >> 24), byte(NodeID("b") >> 16), byte(NodeID("b") >> 8), byte(NodeID("b"))})
	if _, _, v := openPair(nodes.set(t, "a", 1), reflected); v != openBadTag {
		t.Errorf("reflected to A: verdict %d", v)
	}
	if _, _, v := openPair(nodes.set(t, "b", 2), bytes.Clone(sealed)); v != openBadTag {
		t.Errorf("opened under another epoch: verdict %d", v)
	}
	if _, _, v := openPair(nodes.set(t, "b", 1), bytes.Clone(sealed)); v != openOK {
		t.Errorf("opened under its epoch: verdict %d", v)
	}
}

// TestPairSpoofedSender: C seals with its own keys but claims A's id; B
// refuses it (the key of A's pair does not open it), and a made-up id is
// an unknown sender.
func TestPairSpoofedSender(t *testing.T) {
	nodes := newTestNodes(t, "a", "b", "c")
	atB := nodes.set(t, "b", 1)
	cToB := nodes.pair(t, "c", "b", 1)
	sealed := cToB.Seal(nil, genevePacketV4)
	spoofed := bytes.Clone(sealed)
	id := NodeID("a")
	spoofed[0], spoofed[1], spoofed[2], spoofed[3] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
	if _, _, v := openPair(atB, spoofed); v != openBadTag {
		t.Errorf("C claiming A's id: verdict %d, want bad tag", v)
	}
	unknown := bytes.Clone(sealed)
	unknown[0] ^= 0xff
	if _, _, v := openPair(atB, unknown); v != openUnknownSender {
		t.Errorf("unknown id: verdict %d", v)
	}
	// C's own, under its id, opens: the check above was the key.
	if _, from, v := openPair(atB, sealed); v != openOK || from.Node() != "c" {
		t.Errorf("C as itself: verdict %d", v)
	}
}

func TestPairSame(t *testing.T) {
	nodes := newTestNodes(t, "a", "b")
	p := nodes.pair(t, "a", "b", 3)
	if !p.Same(&nodes["b"].PublicKey, 3) || p.Same(&nodes["b"].PublicKey, 4) || p.Same(&nodeKey(t).PublicKey, 3) {
		t.Error("Same")
	}
	if _, err := NewPeer(Local{Name: "a", Key: nodes["a"]}, "a", &nodes["a"].PublicKey, 1); err == nil {
		t.Error("a pair with itself")
	}
}

func TestPeerSetCollision(t *testing.T) {
	nodes := newTestNodes(t, "a", "b")
	p1, p2 := nodes.pair(t, "a", "b", 1), nodes.pair(t, "a", "b", 2)
	s, err := NewPeerSet("a", []*Peer{p1, p2}, map[string]netip.AddrPort{"b": netip.MustParseAddrPort("127.0.0.2:6081")})
	if err == nil || s.ByID(NodeID("b")) != nil || s.ByAddr(netip.MustParseAddrPort("127.0.0.2:6081")) != nil {
		t.Errorf("colliding ids: err %v", err)
	}
}

// TestConnPairs: two Conns seal per pair; a third Conn that holds the
// cluster key and its own pair keys cannot inject, a replay of a captured
// datagram is dropped and counted, and a peer without an identity still
// uses the cluster key.
func TestConnPairs(t *testing.T) {
	nodes := newTestNodes(t, "a", "b", "c")
	key := mustKey(t, testSecret)
	var setA, setB, setC peerSwitch
	a := listen(t, Options{Key: key, Peers: &setA})
	b := listen(t, Options{Key: key, Peers: &setB})
	c := listen(t, Options{Key: key, Peers: &setC})
	addrs := map[string]netip.AddrPort{"a": a.LocalAddr(), "b": b.LocalAddr(), "c": c.LocalAddr()}
	for name, sw := range map[string]*peerSwitch{"a": &setA, "b": &setB, "c": &setC} {
		var peers []*Peer
		for other := range nodes {
			if other != name {
				peers = append(peers, nodes.pair(t, name, other, 1))
			}
		}
		s, err := NewPeerSet(name, peers, addrs)
		if err != nil {
			t.Fatal(err)
		}
		sw.s = s
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))

	if err := a.WriteBatch(b.LocalAddr(), [][]byte{genevePacketV4}); err != nil {
		t.Fatal(err)
	}
	msgs := make([]Message, 4)
	n, err := b.ReadBatch(msgs)
	if err != nil || n != 1 || msgs[0].Peer == nil || msgs[0].Peer.Node() != "a" || !bytes.Equal(msgs[0].Packet, genevePacketV4) {
		t.Fatalf("B read %d %v", n, err)
	}

	// A datagram A sealed for B, captured and sent three times from a
	// plain socket at an address B takes per pair: the id is A's and the
	// tag verifies; the second and third are replays.
	captured := setA.s.ByAddr(b.LocalAddr()).Seal(nil, genevePacketV6)
	raw := listen(t, Options{})
	setB.s.byAddr[raw.LocalAddr()] = setB.s.ByID(NodeID("c")) // raw's address is a per-pair peer for B
	for range 3 {
		if err := raw.WriteBatch(b.LocalAddr(), [][]byte{captured}); err != nil {
			t.Fatal(err)
		}
	}
	// C seals per pair, with its keys, and claims A's id and a counter
	// ahead of A's window: the tag fails. The cluster key from a pair's
	// address is read as an id no node has.
	forged := setC.s.ByAddr(b.LocalAddr()).Seal(nil, genevePacketV4)
	id := NodeID("a")
	forged[0], forged[1], forged[2], forged[3] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
	forged[4] = 0xff
	if err := raw.WriteBatch(b.LocalAddr(), [][]byte{forged, key.Seal(nil, genevePacketV4)}); err != nil {
		t.Fatal(err)
	}
	// A marker from A to know the rest has been read.
	if err := a.WriteBatch(b.LocalAddr(), [][]byte{genevePacketV4}); err != nil {
		t.Fatal(err)
	}
	var got []Message
	for len(got) < 2 {
		n, err := b.ReadBatch(msgs)
		if err != nil {
			t.Fatalf("read: %v (got %d)", err, len(got))
		}
		for _, m := range msgs[:n] {
			m.Packet = bytes.Clone(m.Packet)
			got = append(got, m)
		}
	}
	if !bytes.Equal(got[0].Packet, genevePacketV6) || got[0].Peer.Node() != "a" {
		t.Errorf("first: % x", got[0].Packet)
	}
	cs := b.Counters()
	if cs.DroppedReplay != 2 || cs.DroppedBadTag != 1 || cs.DroppedUnknownSender != 1 {
		t.Errorf("counters %+v: want 2 replays, 1 bad tag, 1 unknown sender", cs)
	}

	// A node without an identity (no entry in B's set) uses the cluster key.
	d := listen(t, Options{Key: key, Peers: &peerSwitch{s: &PeerSet{}}})
	if err := d.WriteBatch(b.LocalAddr(), [][]byte{genevePacketV4}); err != nil {
		t.Fatal(err)
	}
	n, err = b.ReadBatch(msgs)
	if err != nil || n != 1 || msgs[0].Peer != nil || !bytes.Equal(msgs[0].Packet, genevePacketV4) {
		t.Fatalf("cluster-key peer: read %d %v", n, err)
	}
}

// peerSwitch is a Peers whose set a test fills in after the Conns exist.
type peerSwitch struct{ s *PeerSet }

func (p *peerSwitch) ByAddr(a netip.AddrPort) *Peer { return p.s.ByAddr(a) }
func (p *peerSwitch) ByID(id uint32) *Peer          { return p.s.ByID(id) }

// FuzzOpenPair: opening any bytes as a datagram sealed per pair never
// panics, and what opens is a prefix-free slice of the input.
func FuzzOpenPair(f *testing.F) {
	nodes := newTestNodes(f, "a", "b")
	aToB := nodes.pair(f, "a", "b", 1)
	f.Add(aToB.Seal(nil, genevePacketV4))
	f.Add(aToB.Seal(nil, genevePacketV6))
	f.Add([]byte{})
	f.Add(make([]byte, PairHeaderLen+HeaderMinLen+TagSize))
	f.Fuzz(func(t *testing.T, d []byte) {
		atB := nodes.set(t, "b", 1)
		// A known sender id, so the fuzzer reaches the header and the tag.
		if len(d) >= 4 && d[0]&1 == 0 {
			id := NodeID("a")
			d[0], d[1], d[2], d[3] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
		}
		in := bytes.Clone(d)
		pkt, _, v := openPair(atB, d)
		if v == openOK {
			if len(pkt) > len(in)-PairHeaderLen-TagSize {
				t.Fatalf("opened %d bytes out of %d", len(pkt), len(in))
			}
			Header(pkt).Check()
		}
	})
}

// BenchmarkSealOpen seals and opens one 1400-byte datagram in memory,
// with the cluster key and per pair of nodes (with its replay window):
// the CPU cost of each, without the sockets.
func BenchmarkSealOpen(b *testing.B) {
	inner := bytes.Repeat([]byte{0x5a}, datagramLen-len(genevePacketV4))
	pkt := append(bytes.Clone(genevePacketV4), inner...)
	b.Run("cluster-key", func(b *testing.B) {
		k := mustKey(b, testSecret)
		buf := make([]byte, 0, len(pkt)+SealOverhead)
		b.SetBytes(int64(len(pkt)))
		for b.Loop() {
			d := k.Seal(buf[:0], pkt)
			if _, err := k.Open(d[NonceSize:NonceSize], d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("per-node", func(b *testing.B) {
		nodes := newTestNodes(b, "a", "b")
		aToB, atB := nodes.pair(b, "a", "b", 1), nodes.set(b, "b", 1)
		buf := make([]byte, 0, len(pkt)+SealOverhead)
		b.SetBytes(int64(len(pkt)))
		for b.Loop() {
			d := aToB.Seal(buf[:0], pkt)
			if _, _, v := openPair(atB, d); v != openOK {
				b.Fatal(v)
			}
		}
	})
}
