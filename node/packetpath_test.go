package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/overlay"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// testIdentity is a node's key and a certificate for it (self-signed: the
// overlay reads only its public key).
func testIdentity(t *testing.T, name string) (*ecdsa.PrivateKey, lab.NodeIdentity) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, lab.NodeIdentity{Name: name, Kind: "member", Cert: der, Serial: "01", NotAfter: tmpl.NotAfter}
}

// ipv4Packet is a minimal IPv4 header from src to dst with a payload.
func ipv4Packet(src, dst string, payload []byte) []byte {
	p := make([]byte, 20, 20+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(20+len(payload)))
	p[8], p[9] = 64, 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	return append(p, payload...)
}

// TestPacketPathPerNode runs the packet paths of nodes a and b on
// 127.0.0.1 and .2 over one replica, with node c a plain UDP socket on
// 127.0.0.3 (a rogue holding c's legitimate key). Host h1 on a and h2 on
// b share network n1; c runs nothing on it. a reaches h2, sealed per
// pair; a datagram of a's sent again is dropped as a replay; c cannot
// claim a's id, inject into n1, or (once removed) send at all; a packet
// from a with a source not its host's is dropped as spoofed.
func TestPacketPathPerNode(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{Origin: "a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys := map[string]*ecdsa.PrivateKey{}
	ids := map[string]lab.NodeIdentity{}
	for _, n := range []string{"a", "b", "c"} {
		keys[n], ids[n] = testIdentity(t, n)
	}
	const vni = 4242
	n1 := lab.NetworkName("l", "n1")
	if _, err := st.Update(func(tx *store.Tx) error {
		for _, id := range ids {
			if err := lab.PutNodeIdentity(tx, id); err != nil {
				return err
			}
		}
		if err := lab.PutNetwork(tx, &labv1.Network{Name: n1, Ipv4: "10.0.1.0/24", Vni: vni}); err != nil {
			return err
		}
		for _, h := range []*labv1.Host{
			{Name: lab.HostName("l", "h1"), Node: "a", Interfaces: []*labv1.Interface{{Network: "n1", Ipv4: "10.0.1.1/24"}}},
			{Name: lab.HostName("l", "h2"), Node: "b", Interfaces: []*labv1.Interface{{Network: "n1", Ipv4: "10.0.1.2/24"}}},
		} {
			if err := lab.PutHost(tx, h); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	rogue, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	log := slog.New(slog.DiscardHandler)
	paths := map[string]*packetPath{}
	for i, n := range []string{"a", "b"} {
		p, err := newPacketPath(Config{Name: n, Overlay: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + i)}), 0).String(), Key: []byte("a cluster key that every member has")}, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.close() })
		paths[n] = p
	}
	addrs := map[string]netip.AddrPort{"a": paths["a"].addr(), "b": paths["b"].addr(), "c": rogue.LocalAddr().(*net.UDPAddr).AddrPort()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for n, p := range paths {
		never := make(chan struct{})
		p.followMembers(func() map[string]netip.AddrPort {
			m := map[string]netip.AddrPort{}
			for k, v := range addrs {
				if k != n {
					m[k] = v
				}
			}
			return m
		}, func() (<-chan struct{}, func()) { return never, func() {} })
		p.followIdentities(st, func() *ecdsa.PrivateKey { return keys[n] })
		wg.Add(1)
		go func() { defer wg.Done(); p.run(ctx) }()
	}
	a, b := paths["a"], paths["b"]
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; b's counters %+v", what, b.conn.Counters())
			}
		}
	}
	waitFor("per-pair peers", func() bool {
		return a.pairs.ByAddr(addrs["b"]) != nil && b.pairs.ByAddr(addrs["a"]) != nil && b.pairs.ByAddr(addrs["c"]) != nil
	})

	got := make(chan []byte, 16)
	b.fab.SetNetwork(n1, vni, nil)
	if _, err := b.fab.Attach(n1, "h2", []netip.Addr{netip.MustParseAddr("10.0.1.2")}, func(pkt []byte) { got <- bytes.Clone(pkt) }); err != nil {
		t.Fatal(err)
	}
	h2 := netip.MustParseAddr("10.0.1.2")
	recv := func(what string) []byte {
		t.Helper()
		select {
		case p := <-got:
			return p
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing delivered; b's counters %+v", what, b.conn.Counters())
			return nil
		}
	}

	// a to h2, sealed per pair.
	pkt := ipv4Packet("10.0.1.1", "10.0.1.2", []byte("hello"))
	if err := a.link.SendRemote(addrs["b"], vni, h2, bytes.Clone(pkt)); err != nil {
		t.Fatal(err)
	}
	if p := recv("a to h2"); !bytes.Equal(p, pkt) {
		t.Fatalf("delivered % x, want % x", p, pkt)
	}
	if c := b.pairs.ByID(overlay.NodeID("a")).Counters(); c.Received != 1 {
		t.Errorf("b's counters for a: %+v", c)
	}

	// A datagram a sealed for b, captured and sent three times from c's
	// address with a raw socket: delivered once, then dropped as replays.
	inner := ipv4Packet("10.0.1.1", "10.0.1.2", []byte("captured"))
	geneve, err := overlay.AppendHeader(nil, vni, h2, inner)
	if err != nil {
		t.Fatal(err)
	}
	geneve = append(geneve, inner...)
	captured := a.pairs.ByAddr(addrs["b"]).Seal(nil, geneve)
	send := func(d []byte) {
		t.Helper()
		if _, err := rogue.WriteToUDPAddrPort(d, addrs["b"]); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		send(captured)
	}
	recv("the captured datagram, first time")
	waitFor("two replays", func() bool { return b.conn.Counters().DroppedReplay == 2 })

	// c, with its own key, claims a's id: the tag fails.
	cToB, err := overlay.NewPeer(overlay.Local{Name: "c", Key: keys["c"]}, "b", &keys["b"].PublicKey, overlayEpoch)
	if err != nil {
		t.Fatal(err)
	}
	forged := cToB.Seal(nil, geneve)
	binary.BigEndian.PutUint32(forged, overlay.NodeID("a"))
	binary.BigEndian.PutUint64(forged[4:], ^uint64(0)>>1) // ahead of a's window
	send(forged)
	waitFor("a bad tag", func() bool { return b.conn.Counters().DroppedBadTag == 1 })

	// c as itself into n1, where it runs no interface; a with a source
	// that is not h1's.
	send(cToB.Seal(nil, geneve))
	waitFor("not on network", func() bool { return b.conn.Counters().DroppedNotOnNetwork == 1 })
	if err := a.link.SendRemote(addrs["b"], vni, h2, ipv4Packet("10.0.1.9", "10.0.1.2", []byte("spoofed"))); err != nil {
		t.Fatal(err)
	}
	waitFor("a spoofed source", func() bool { return b.conn.Counters().DroppedSpoofedSource == 1 })
	// By node, as the metrics export them.
	pc := b.peerCounters()
	if pc["a"].SpoofedSource != 1 || pc["a"].BadTag != 1 || pc["a"].Replayed != 2 || pc["a"].Received != 3 || pc["c"].NotOnNetwork != 1 {
		t.Errorf("b's counters by node: %+v", pc)
	}

	// c removed: its datagrams are refused before anything else.
	c := ids["c"]
	c.Removed, c.RemovedAt = true, time.Now()
	if _, err := st.Update(func(tx *store.Tx) error { return lab.PutNodeIdentity(tx, c) }); err != nil {
		t.Fatal(err)
	}
	waitFor("c's keys dropped", func() bool { return b.pairs.ByID(overlay.NodeID("c")) == nil })
	before := b.conn.Counters().DroppedUnknownSender
	send(cToB.Seal(nil, geneve))
	waitFor("c refused", func() bool { return b.conn.Counters().DroppedUnknownSender == before+1 })

	// a still reaches h2.
	if err := a.link.SendRemote(addrs["b"], vni, h2, bytes.Clone(pkt)); err != nil {
		t.Fatal(err)
	}
	if p := recv("a to h2 again"); !bytes.Equal(p, pkt) {
		t.Fatalf("delivered % x", p)
	}
	select {
	case p := <-got:
		t.Fatalf("delivered more than was sent: % x", p)
	default:
	}
}
