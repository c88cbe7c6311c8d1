package overlay

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// socketBuffer is what the receivers here ask for: bursts of trains need
// room, and loopback drops what does not fit.
const socketBuffer = 8 << 20

// TestConnTransfer sends 100k 1400-byte datagrams in trains of 1 to 64 and
// checks that every one arrives, whole and in order, on each path: GSO trains
// into GRO, sendmmsg into recvmmsg, and the two mixed (the kernel segments a
// GSO train for a receiver without GRO).
func TestConnTransfer(t *testing.T) {
	modes := []struct {
		name     string
		snd, rcv Options
		n        int
	}{
		{"gso-gro", Options{}, Options{}, 100_000},
		{"sendmmsg-recvmmsg", Options{NoGSO: true}, Options{NoGRO: true}, 100_000},
		{"gso-recvmmsg", Options{}, Options{NoGRO: true}, 20_000},
		{"sendmmsg-gro", Options{NoGSO: true}, Options{}, 20_000},
	}
	for _, sealed := range []bool{false, true} {
		for _, m := range modes {
			name := m.name
			if sealed {
				name += "-sealed"
			}
			t.Run(name, func(t *testing.T) {
				snd, rcv := m.snd, m.rcv
				if sealed {
					snd.Key, rcv.Key = mustKey(t, testSecret), mustKey(t, testSecret)
				}
				rcv.ReadBuffer = socketBuffer
				a, b := listen(t, snd), listen(t, rcv)
				if a.GSO() != !snd.NoGSO || b.GRO() != !rcv.NoGRO {
					t.Fatalf("GSO %v GRO %v: this kernel (Linux 5.0+ has both) or Options were not honoured", a.GSO(), b.GRO())
				}
				res := transfer(a, b, transferConfig{
					n: m.n, size: datagramLen, train: randomTrains(64),
					readBatch: 64, window: 1024, idle: 5 * time.Second,
				})
				if res.err != nil {
					t.Fatal(res.err)
				}
				if res.received != m.n || res.lost != 0 {
					t.Fatalf("received %d of %d, %d lost", res.received, m.n, res.lost)
				}
				overhead := 0
				if sealed {
					overhead = SealOverhead
				}
				sc, rc := a.Counters(), b.Counters()
				wantBytes := uint64(m.n * (datagramLen + overhead))
				if sc.PacketsSent != uint64(m.n) || sc.BytesSent != wantBytes {
					t.Errorf("sender counted %d datagrams, %d bytes; want %d, %d", sc.PacketsSent, sc.BytesSent, m.n, wantBytes)
				}
				if rc.PacketsReceived != uint64(m.n) || rc.BytesReceived != wantBytes {
					t.Errorf("receiver counted %d datagrams, %d bytes; want %d, %d", rc.PacketsReceived, rc.BytesReceived, m.n, wantBytes)
				}
				if rc.DroppedMalformed+rc.DroppedBadTag+rc.DroppedUnknownSender != 0 {
					t.Errorf("receiver dropped some: %+v", rc)
				}
				t.Logf("%d datagrams in %v (%.0f/s): %d sendmmsg, %d recvmmsg",
					m.n, res.elapsed.Round(time.Millisecond), float64(m.n)/res.elapsed.Seconds(), sc.SendCalls, rc.ReceiveCalls)
				if !snd.NoGSO && !rcv.NoGRO && rc.ReceiveCalls > uint64(m.n/4) {
					t.Errorf("%d reads for %d datagrams: GSO trains did not arrive coalesced", rc.ReceiveCalls, m.n)
				}
			})
		}
	}
}

// TestConnMixedSizes: trains cut where sizes change (udp(7): all segments but
// the last of one size), and every datagram arrives as it was sent.
func TestConnMixedSizes(t *testing.T) {
	for _, opts := range []Options{{}, {NoGSO: true, NoGRO: true}} {
		a, b := listen(t, opts), listen(t, Options{NoGRO: opts.NoGRO, ReadBuffer: socketBuffer})
		sizes := []int{1400, 1400, 1400, 900, 1400, 1400, 20, 20, 20, 1500, 8, 1400, 65000, 1400}
		for range 100 {
			sizes = append(sizes, 1000)
		}
		var pkts [][]byte
		for i, n := range sizes {
			p := make([]byte, n)
			for j := range p {
				p[j] = byte(i + j)
			}
			pkts = append(pkts, p)
		}
		// Plain GENEVE is checked on receipt, so make each a valid one.
		for i, p := range pkts {
			g := Geneve{ProtocolType: ProtoIPv4, VNI: uint32(i)}
			g.Encode(p)
		}
		if err := a.WriteBatch(b.LocalAddr(), pkts); err != nil {
			t.Fatal(err)
		}
		if c := a.Counters(); c.SendCalls != 1 {
			t.Errorf("GSO %v: %d sendmmsg calls for one WriteBatch", a.GSO(), c.SendCalls)
		}
		msgs := make([]Message, 7)
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		for i := 0; i < len(pkts); {
			n, err := b.ReadBatch(msgs)
			if err != nil {
				t.Fatalf("after %d: %v", i, err)
			}
			for _, m := range msgs[:n] {
				if !slices.Equal([]byte(m.Packet), pkts[i]) {
					t.Fatalf("GSO %v: datagram %d: got %d bytes (VNI %d), want %d", a.GSO(), i, len(m.Packet), m.Packet.VNI(), len(pkts[i]))
				}
				i++
			}
		}
	}
}

func TestTrainEnd(t *testing.T) {
	lens := func(ls ...int) []Datagram {
		var p []Datagram
		for _, l := range ls {
			p = append(p, Datagram{Head: make([]byte, l/2), Body: make([]byte, l-l/2)})
		}
		return p
	}
	many := make([]int, 100)
	for i := range many {
		many[i] = 100
	}
	tests := []struct {
		name     string
		pkts     []Datagram
		overhead int
		max      int
		want     []int // train ends, from the start
	}{
		{"equal", lens(10, 10, 10), 0, 1000, []int{3}},
		{"shorter ends a train", lens(10, 10, 5, 10, 10), 0, 1000, []int{3, 5}},
		{"longer starts one", lens(10, 10, 20, 20), 0, 1000, []int{2, 4}},
		{"shorter first", lens(5, 10, 10), 0, 1000, []int{1, 3}},
		{"64 at most", lens(many...), 0, 1 << 20, []int{64, 100}},
		{"bytes at most", lens(10, 10, 10, 10, 10), 0, 25, []int{2, 4, 5}},
		{"overhead counts", lens(10, 10, 10, 10, 10), 28, 80, []int{2, 4, 5}},
		{"one of the largest", lens(65507, 65507), 0, MaxDatagramIPv4, []int{1, 2}},
	}
	for _, tt := range tests {
		var got []int
		for i := 0; i < len(tt.pkts); {
			i = trainEnd(tt.pkts, i, tt.overhead, tt.max)
			got = append(got, i)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: trains end at %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestConnDrops: what is not a good packet from a known sender is dropped
// and counted under one reason, and nothing stalls or crashes.
func TestConnDrops(t *testing.T) {
	key, otherKey := mustKey(t, testSecret), mustKey(t, []byte("another cluster"))
	stranger := rawSocket(t)
	rcv := listen(t, Options{
		Key:        key,
		ReadBuffer: socketBuffer,
		Accept:     func(from netip.AddrPort) bool { return from != stranger.LocalAddr().(*net.UDPAddr).AddrPort() },
	})
	raw := rawSocket(t)
	good := newStream(datagramLen)
	pkt := good.packet(make([]byte, datagramLen), 1)

	send := func(c *net.UDPConn, b []byte) {
		t.Helper()
		if _, err := c.WriteToUDPAddrPort(b, rcv.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	send(raw, nil)                                        // empty: malformed
	send(raw, []byte{1, 2, 3})                            // shorter than nonce and tag: malformed
	send(raw, key.Seal(nil, []byte("not GENEVE at all"))) // sealed, then malformed
	send(raw, key.Seal(nil, genevePacketV4[:12]))         // sealed, options beyond the packet: malformed
	send(raw, pkt)                                        // not sealed: bad tag
	send(raw, otherKey.Seal(nil, pkt))                    // another key: bad tag
	bad := key.Seal(nil, pkt)
	bad[len(bad)-1] ^= 0x80
	send(raw, bad)                     // altered tag: bad tag
	send(stranger, key.Seal(nil, pkt)) // unknown sender
	// A GSO train sealed under another key, one under ours with a malformed
	// datagram in the middle, and one from a sender Accept refuses.
	wrong := listen(t, Options{Key: otherKey})
	ours := listen(t, Options{Key: key})
	train := [][]byte{pkt, pkt, pkt, pkt}
	if err := wrong.WriteBatch(rcv.LocalAddr(), train); err != nil {
		t.Fatal(err)
	}
	broken := slices.Clone(pkt)
	broken[0] = 0xc0 // GENEVE version 3
	if err := ours.WriteBatch(rcv.LocalAddr(), [][]byte{pkt, broken, pkt}); err != nil {
		t.Fatal(err)
	}
	send(raw, key.Seal(nil, good.packet(make([]byte, datagramLen), 2))) // the last one

	want := []uint64{1, 1, 2}
	var got []uint64
	msgs := make([]Message, 4)
	rcv.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < len(want) {
		n, err := rcv.ReadBatch(msgs)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		for _, m := range msgs[:n] {
			seq, err := good.check(m.Packet)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, seq)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	c := rcv.Counters()
	if c.DroppedMalformed != 5 || c.DroppedBadTag != 7 || c.DroppedUnknownSender != 1 || c.PacketsReceived != 16 {
		t.Errorf("counters %+v; want 5 malformed, 7 bad tag, 1 unknown sender of 16", c)
	}

	// Without a key: sealed packets and GENEVE that labnet refuses.
	plain := listen(t, Options{})
	critical := slices.Clone(pkt)
	critical[1] |= 0x40
	send2 := func(b []byte) {
		if _, err := raw.WriteToUDPAddrPort(b, plain.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	send2(key.Seal(nil, pkt))
	send2(critical)
	send2(genevePacketV4[:7])
	send2(pkt)
	plain.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := plain.ReadBatch(msgs); err != nil || n != 1 {
		t.Fatalf("ReadBatch = %d, %v; want the one good packet", n, err)
	}
	if c := plain.Counters(); c.DroppedMalformed != 3 || c.PacketsReceived != 4 {
		t.Errorf("counters %+v; want 3 malformed of 4", c)
	}
}

func rawSocket(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback4, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConnIPv6(t *testing.T) {
	a, err := Listen(netip.MustParseAddrPort("[::1]:0"), Options{})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer a.Close()
	b, err := Listen(netip.MustParseAddrPort("[::1]:0"), Options{ReadBuffer: socketBuffer})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res := transfer(a, b, transferConfig{n: 5000, size: datagramLen, train: randomTrains(64), readBatch: 64, window: 1024, idle: 5 * time.Second})
	if res.err != nil || res.received != 5000 {
		t.Fatalf("received %d of 5000: %v", res.received, res.err)
	}
	if err := a.WriteBatch(netip.MustParseAddrPort("127.0.0.1:9"), [][]byte{genevePacketV4}); err == nil {
		t.Error("IPv6 socket wrote to an IPv4 address")
	}
}

func TestConnWriteErrors(t *testing.T) {
	a, b := listen(t, Options{Key: mustKey(t, testSecret)}), listen(t, Options{})
	for _, tt := range []struct {
		name string
		dst  netip.AddrPort
		pkts [][]byte
	}{
		{"empty datagram", b.LocalAddr(), [][]byte{genevePacketV4, {}}},
		{"too big once sealed", b.LocalAddr(), [][]byte{make([]byte, MaxDatagramIPv4-SealOverhead+1)}},
		{"no address", netip.AddrPort{}, [][]byte{genevePacketV4}},
		{"IPv6 peer", netip.MustParseAddrPort("[::1]:6081"), [][]byte{genevePacketV4}},
	} {
		err := a.WriteBatch(tt.dst, tt.pkts)
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "write" {
			t.Errorf("%s: WriteBatch error = %v, want a *net.OpError", tt.name, err)
		}
	}
	if c := a.Counters(); c.PacketsSent != 0 || c.SendCalls != 0 {
		t.Errorf("refused writes sent something: %+v", c)
	}
	if err := a.WriteBatch(b.LocalAddr(), [][]byte{make([]byte, MaxDatagramIPv4-SealOverhead)}); err != nil {
		t.Errorf("largest datagram: %v", err)
	}
	if err := a.WriteBatch(b.LocalAddr(), nil); err != nil {
		t.Errorf("no datagrams: %v", err)
	}
}

func TestConnDeadlineAndClose(t *testing.T) {
	c := listen(t, Options{})
	msgs := make([]Message, 8)
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := c.ReadBatch(msgs); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadBatch after the deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	errc := make(chan error)
	go func() {
		_, err := c.ReadBatch(msgs)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadBatch blocked across Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.WriteBatch(c.LocalAddr(), [][]byte{genevePacketV4}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteBatch after Close: %v", err)
	}
	if n, err := c.ReadBatch(nil); n != 0 || err != nil {
		t.Errorf("ReadBatch(nil) = %d, %v", n, err)
	}
}

// eioOnGSO fails every message that carries a UDP_SEGMENT control message
// with EIO, as a device without checksum offload makes the kernel do.
type eioOnGSO struct{ batchConn }

func (e eioOnGSO) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	for i, m := range ms {
		if len(m.OOB) > 0 {
			if i == 0 {
				return -1, &net.OpError{Op: "write", Err: os.NewSyscallError("sendmmsg", syscall.EIO)}
			}
			ms = ms[:i]
			break
		}
	}
	return e.batchConn.WriteBatch(ms, flags)
}

// TestConnGSOFallback: a kernel that refuses a GSO train with EIO gets its
// datagrams one by one, and no more trains after that.
func TestConnGSOFallback(t *testing.T) {
	a, b := listen(t, Options{}), listen(t, Options{ReadBuffer: socketBuffer})
	if !a.GSO() {
		t.Skip("no UDP GSO")
	}
	a.pc = eioOnGSO{a.pc}
	res := transfer(a, b, transferConfig{n: 2000, size: datagramLen, train: fixed(10), readBatch: 64, window: 512, idle: 5 * time.Second})
	if res.err != nil || res.received != 2000 {
		t.Fatalf("received %d of 2000: %v", res.received, res.err)
	}
	if a.GSO() {
		t.Error("GSO still on after EIO")
	}
}

// TestConnDetached: the packets of a coalesced train come in a buffer the
// Conn gives up, so they stay intact however much is read after them, and
// none can grow into the next; a lone datagram comes in the Conn's buffers.
func TestConnDetached(t *testing.T) {
	a, b := listen(t, Options{}), listen(t, Options{ReadBuffer: socketBuffer})
	if !a.GSO() || !b.GRO() {
		t.Skip("no UDP GSO and GRO")
	}
	s := newStream(datagramLen)
	const trains, perTrain = 8, 64
	var kept []Message
	msgs := make([]Message, 64)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range trains {
		pkts := make([][]byte, perTrain)
		for j := range pkts {
			pkts[j] = s.packet(make([]byte, datagramLen), uint64(i*perTrain+j))
		}
		if err := a.WriteBatch(b.LocalAddr(), pkts); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < perTrain; {
			n, err := b.ReadBatch(msgs)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs[:n] {
				if !m.Detached {
					t.Fatalf("packet %d of a train not detached", i*perTrain+got)
				}
				if cap(m.Packet) != len(m.Packet) {
					t.Fatalf("detached packet of %d bytes has room for %d", len(m.Packet), cap(m.Packet))
				}
				kept = append(kept, m)
				got++
			}
		}
	}
	for i, m := range kept {
		if seq, err := s.check(m.Packet); err != nil || seq != uint64(i) {
			t.Fatalf("kept packet %d after later reads: seq %d, %v", i, seq, err)
		}
	}
	if err := a.WriteBatch(b.LocalAddr(), [][]byte{s.packet(make([]byte, datagramLen), 0)}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.ReadBatch(msgs); err != nil || n != 1 || msgs[0].Detached {
		t.Fatalf("a lone datagram: %d messages, detached %v, %v", n, n > 0 && msgs[0].Detached, err)
	}
}
