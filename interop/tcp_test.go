package interop_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	gtcp "gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/labnet-dev/labnet/interop"
	"github.com/labnet-dev/labnet/stack/tcp"
)

// mixedTCP is a Mixed pair with our TCP attached to our side.
type mixedTCP struct {
	*interop.Mixed
	TCP *tcp.Protocol
}

func newMixedTCP(t *testing.T, o interop.Options) *mixedTCP {
	t.Helper()
	m := newMixed(t, o)
	p := tcp.New(m.Labnet, tcp.Options{})
	t.Cleanup(p.Close) // runs before m.Close: resets what is left, stops timers
	return &mixedTCP{Mixed: m, TCP: p}
}

// direction says which stack opens the connection.
type direction struct {
	name         string
	labnetClient bool
}

var directions = []direction{
	{"labnet-to-gvisor", true},  // our client, gVisor's server
	{"gvisor-to-labnet", false}, // gVisor's client, our server
}

// roles returns the client and server stacks of d and the address the
// server listens on.
func (x *mixedTCP) roles(d direction, v6 bool, port uint16) (client, server interop.TCPStack, addr netip.AddrPort) {
	ours, theirs := interop.TCPStack(interop.LabnetTCP{P: x.TCP}), interop.TCPStack(interop.GVisorTCP{S: x.GVisor})
	if d.labnetClient {
		a := interop.AddrB4
		if v6 {
			a = interop.AddrB6
		}
		return ours, theirs, netip.AddrPortFrom(a, port)
	}
	a := interop.AddrA4
	if v6 {
		a = interop.AddrA6
	}
	return theirs, ours, netip.AddrPortFrom(a, port)
}

// describe is both sides' state, for failure messages: each of our
// connections (tcp.Info, as ss -ti), each of gVisor's TCP endpoints
// (TCP_INFO) with its stack's TCP counters, and the link's counters.
func (x *mixedTCP) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "labnet TCP: %+v\n", x.TCP.Stats())
	for _, in := range x.TCP.Connections() {
		fmt.Fprintf(&b, "  %+v\n", in)
	}
	b.WriteString(describeGVisorTCP(x.GVisor))
	ab, ba := x.Stats()
	fmt.Fprintf(&b, "link labnet->gvisor: %+v\nlink gvisor->labnet: %+v\n", ab, ba)
	return b.String()
}

// describeGVisorTCP lists a gVisor stack's TCP endpoints and counters.
func describeGVisorTCP(s *gstack.Stack) string {
	var b strings.Builder
	st := s.Stats().TCP
	fmt.Fprintf(&b, "gvisor TCP: segsIn=%d segsOut=%d invalid=%d retransmits=%d fastRetransmit=%d sackRecovery=%d tlpRecovery=%d timeouts=%d resetsSent=%d resetsRcvd=%d checksumErrors=%d\n",
		st.ValidSegmentsReceived.Value(), st.SegmentsSent.Value(), st.InvalidSegmentsReceived.Value(),
		st.Retransmits.Value(), st.FastRetransmit.Value(), st.SACKRecovery.Value(), st.TLPRecovery.Value(),
		st.Timeouts.Value(), st.ResetsSent.Value(), st.ResetsReceived.Value(), st.ChecksumErrors.Value())
	for _, te := range s.RegisteredEndpoints() {
		ep, ok := te.(*gtcp.Endpoint)
		if !ok {
			continue
		}
		id := ep.Info().(*gstack.TransportEndpointInfo).ID
		var ti tcpip.TCPInfoOption
		ep.GetSockOpt(&ti)
		es := ep.Stats().(*gtcp.Stats)
		fmt.Fprintf(&b, "  [%v]:%d <-> [%v]:%d %v rtt=%v rttvar=%v rto=%v cc=%v cwnd=%d ssthresh=%d reorderSeen=%v segsIn=%d segsOut=%d\n",
			id.LocalAddress, id.LocalPort, id.RemoteAddress, id.RemotePort, gtcp.EndpointState(ep.State()),
			ti.RTT, ti.RTTVar, ti.RTO, ti.CcState, ti.SndCwnd, ti.SndSsthresh, ti.ReorderSeen,
			es.SegmentsReceived.Value(), es.SegmentsSent.Value())
	}
	return b.String()
}

// connect listens on addr with server, dials it with client and returns
// both ends of the connection.
func connect(t *testing.T, client, server interop.TCPStack, addr netip.AddrPort, describe func() string) (cc, sc net.Conn) {
	t.Helper()
	ln, err := server.Listen(addr)
	if err != nil {
		t.Fatalf("listen on %v: %v", addr, err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		acc <- accepted{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err = client.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("dial %v: %v\n%s", addr, err, describe())
	}
	t.Cleanup(func() { cc.Close() })
	select {
	case a := <-acc:
		if a.err != nil {
			t.Fatalf("accept on %v: %v\n%s", addr, a.err, describe())
		}
		sc = a.c
	case <-time.After(10 * time.Second):
		t.Fatalf("dial %v succeeded but nothing accepted in 10s\n%s", addr, describe())
	}
	t.Cleanup(func() { sc.Close() })
	return cc, sc
}

// within runs the functions concurrently and waits up to limit for all of
// them; on timeout it reports both sides' state, unblocks the connections
// (a past deadline, then Close) and fails.
func within(t *testing.T, limit time.Duration, describe func() string, conns []net.Conn, fns ...func() error) {
	t.Helper()
	errs := make(chan error, len(fns))
	for _, f := range fns {
		go func() { errs <- f() }()
	}
	timeout := time.After(limit)
	var failed []error
	for range fns {
		select {
		case err := <-errs:
			if err != nil {
				failed = append(failed, err)
			}
		case <-timeout:
			state := describe()
			for _, c := range conns {
				c.SetDeadline(time.Now())
				c.Close()
			}
			t.Fatalf("not done in %v (errors so far: %v)\n%s", limit, failed, state)
		}
	}
	if len(failed) > 0 {
		t.Fatalf("%v\n%s", errors.Join(failed...), describe())
	}
}

// writeChunks writes data in chunks of random sizes up to max.
func writeChunks(c net.Conn, data []byte, max int, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 0))
	for len(data) > 0 {
		n := min(len(data), 1+r.IntN(max))
		if _, err := c.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// readHash reads c to EOF and returns the byte count and SHA-256.
func readHash(c net.Conn) (int64, [sha256.Size]byte, error) {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := c.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			var sum [sha256.Size]byte
			h.Sum(sum[:0])
			return n, sum, nil
		}
		if err != nil {
			return n, [sha256.Size]byte{}, err
		}
	}
}

// streams are the two random byte streams of the transfer tests, one per
// direction; a test sends a prefix of them.
var streams = sync.OnceValue(func() (s [2][]byte) {
	for i := range s {
		s[i] = make([]byte, transferSize)
		rand.NewChaCha8([32]byte{byte(i + 1)}).Read(s[i])
	}
	return s
})

// transferSize is what each side sends in a transfer test. On a lossy link
// it is lossyTransferSize: our sender has no tail loss probe and no
// time-based loss detection for first transmissions (RACK-TLP, RFC 8985),
// so a lost tail segment, or a lost cumulative ACK with the window full,
// waits for the 200ms RTO; and once gVisor has sent its FIN its duplicate
// ACKs carry no SACK blocks, which leaves our SACK-based recovery blind
// past the first hole. At 5% loss each way that is some 15-20 RTOs per MiB
// (gVisor's own sender, with RACK-TLP, recovers in milliseconds). Raise it
// when that changes.
const (
	transferSize      = 10 << 20
	lossyTransferSize = 1 << 20
)

// TestTCPTransfer sends 10 MiB each way at once (full duplex) between our
// TCP and gVisor's, over IPv4 and IPv6, each stack as client and as
// server, on a plain link and on links that lose or reorder 5% of the
// packets of each direction; both receivers check the SHA-256.
func TestTCPTransfer(t *testing.T) {
	links := []struct {
		name string
		o    interop.Options
		size int
	}{
		{"plain", interop.Options{}, transferSize},
		{"reorder=5%", interop.Options{Reorder: 5, Seed: 2}, transferSize},
		{"loss=5%", interop.Options{Loss: 5, Seed: 1}, lossyTransferSize},
		{"loss=5%+reorder=5%", interop.Options{Loss: 5, Reorder: 5, Seed: 3}, lossyTransferSize},
	}
	for _, l := range links {
		for _, v6 := range []bool{false, true} {
			for _, d := range directions {
				t.Run(fmt.Sprintf("%s/%s/%s", l.name, family(v6), d.name), func(t *testing.T) {
					t.Parallel()
					testTransfer(t, l.o, l.size, v6, d)
				})
			}
		}
	}
}

func testTransfer(t *testing.T, o interop.Options, size int, v6 bool, d direction) {
	var data [2][]byte
	var sums [2][sha256.Size]byte
	for i, s := range streams() {
		data[i] = s[:size]
		sums[i] = sha256.Sum256(data[i])
	}
	x := newMixedTCP(t, o)
	client, server, addr := x.roles(d, v6, 5001)
	cc, sc := connect(t, client, server, addr, x.describe)

	start := time.Now()
	// Each side writes its stream and half-closes, and reads the other's
	// to EOF, at the same time.
	send := func(c net.Conn, i int, who string) func() error {
		return func() error {
			if err := writeChunks(c, data[i], 256<<10, uint64(i)); err != nil {
				return fmt.Errorf("%s write: %w", who, err)
			}
			if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				return fmt.Errorf("%s close write: %w", who, err)
			}
			return nil
		}
	}
	recv := func(c net.Conn, i int, who string) func() error {
		return func() error {
			n, sum, err := readHash(c)
			switch {
			case err != nil:
				return fmt.Errorf("%s read after %d bytes: %w", who, n, err)
			case n != int64(size):
				return fmt.Errorf("%s read %d bytes, want %d", who, n, size)
			case sum != sums[i]:
				return fmt.Errorf("%s read %d bytes with SHA-256 %x, want %x", who, n, sum, sums[i])
			}
			return nil
		}
	}
	within(t, 40*time.Second, x.describe, []net.Conn{cc, sc},
		send(cc, 0, "client"), recv(sc, 0, "server"),
		send(sc, 1, "server"), recv(cc, 1, "client"))
	elapsed := time.Since(start)

	ours := cc
	if !d.labnetClient {
		ours = sc
	}
	// The peer has read everything, but on a lossy link its last ACK may
	// be lost and our retransmission still to come.
	oc := ours.(*tcp.Conn)
	if !waitFor(10*time.Second, func() bool { return oc.Info().BytesAcked == uint64(size) }) {
		t.Errorf("our sent data not all acknowledged 10s after the peer read it\n%s", x.describe())
	}
	info := oc.Info()
	ab, ba := x.Stats()
	t.Logf("%v for 2x%d KiB (%.0f Mbit/s each way); ours: retransmits=%d timeouts=%d recoveries=%d; link lost %d/%d reordered %d/%d",
		elapsed.Round(time.Millisecond), size>>10, float64(size)*8/elapsed.Seconds()/1e6,
		info.Retransmits, info.Timeouts, info.Recoveries, ab.Lost, ba.Lost, ab.Reordered, ba.Reordered)
	if info.BytesReceived != uint64(size) {
		t.Errorf("our connection counted %d bytes received, want %d\n%+v", info.BytesReceived, size, info)
	}
	if !info.SACK || !info.Timestamps {
		t.Errorf("SACK %v, timestamps %v negotiated with gVisor, want both", info.SACK, info.Timestamps)
	}
	if o.Loss > 0 && (ab.Lost == 0 || ba.Lost == 0 || info.Retransmits == 0) {
		t.Errorf("link lost %d and %d packets, we retransmitted %d: the loss did not bite", ab.Lost, ba.Lost, info.Retransmits)
	}
	if o.Reorder > 0 && (ab.Reordered == 0 || ba.Reordered == 0) {
		t.Errorf("link reordered %d and %d packets: the reordering did not bite", ab.Reordered, ba.Reordered)
	}
	if ab.QueueDrops+ba.QueueDrops > 0 {
		t.Logf("link queue dropped %d and %d packets", ab.QueueDrops, ba.QueueDrops)
	}
}

// eventually polls cond every millisecond for up to 5s.
func eventually(cond func() bool) bool { return waitFor(5*time.Second, cond) }

// waitFor polls cond every millisecond for up to limit.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// TestTCPHalfClose has the client send a request and half-close; the
// server reads to EOF, then sends a reply (larger than the initial
// window) on the direction still open and closes; the client reads the
// reply to EOF. Our side's states along the way are checked: FIN-WAIT-2
// then TIME-WAIT as the client (the active closer), CLOSE-WAIT then gone
// as the server. On the lossy link the reply crosses toward a receiver
// that has sent its FIN, which gVisor answers with duplicate ACKs without
// SACK blocks (it sends them only while ESTABLISHED).
func TestTCPHalfClose(t *testing.T) {
	links := []struct {
		name      string
		o         interop.Options
		replySize int
	}{
		{"plain", interop.Options{}, 1 << 20},
		{"loss=5%", interop.Options{Loss: 5, Seed: 4}, 256 << 10},
	}
	for _, l := range links {
		for _, v6 := range []bool{false, true} {
			for _, d := range directions {
				t.Run(fmt.Sprintf("%s/%s/%s", l.name, family(v6), d.name), func(t *testing.T) {
					t.Parallel()
					testHalfClose(t, l.o, l.replySize, v6, d)
				})
			}
		}
	}
}

func testHalfClose(t *testing.T, o interop.Options, replySize int, v6 bool, d direction) {
	x := newMixedTCP(t, o)
	client, server, addr := x.roles(d, v6, 7)
	cc, sc := connect(t, client, server, addr, x.describe)
	var ours *tcp.Conn
	if d.labnetClient {
		ours = cc.(*tcp.Conn)
	} else {
		ours = sc.(*tcp.Conn)
	}
	state := func(want string) {
		t.Helper()
		if !eventually(func() bool { return ours.Info().State == want }) {
			t.Fatalf("our connection is %s, want %s\n%s", ours.Info().State, want, x.describe())
		}
	}
	request, reply := pattern(100_000), bytes.Repeat([]byte("reply "), replySize/6)

	within(t, 20*time.Second, x.describe, []net.Conn{cc, sc}, func() error {
		if _, err := cc.Write(request); err != nil {
			return fmt.Errorf("client write: %w", err)
		}
		return cc.(interface{ CloseWrite() error }).CloseWrite()
	})
	var got []byte
	within(t, 20*time.Second, x.describe, []net.Conn{cc, sc}, func() error {
		var err error
		got, err = io.ReadAll(sc)
		return err
	})
	if !bytes.Equal(got, request) {
		t.Fatalf("server read %d bytes before EOF, want the %d-byte request", len(got), len(request))
	}
	if d.labnetClient {
		state("FIN-WAIT-2")
		if _, err := cc.Write([]byte("x")); err == nil {
			t.Errorf("our Write after CloseWrite succeeded")
		}
	} else {
		state("CLOSE-WAIT")
	}

	start := time.Now()
	within(t, 20*time.Second, x.describe, []net.Conn{cc, sc}, func() error {
		if _, err := sc.Write(reply); err != nil {
			return fmt.Errorf("server write: %w", err)
		}
		return sc.Close()
	}, func() error {
		var err error
		got, err = io.ReadAll(cc)
		return err
	})
	if !bytes.Equal(got, reply) {
		t.Fatalf("client read %d bytes before EOF, want the %d-byte reply", len(got), len(reply))
	}
	in := ours.Info()
	t.Logf("%d-byte reply in %v; ours: retransmits=%d timeouts=%d recoveries=%d",
		len(reply), time.Since(start).Round(time.Millisecond), in.Retransmits, in.Timeouts, in.Recoveries)
	if d.labnetClient {
		// The active closer waits in TIME-WAIT, unless the peer resets it
		// there: gVisor, once closed, answers our ACK of a retransmitted
		// FIN with a RST, and a RST in TIME-WAIT closes (RFC 9293
		// §3.10.7.4; RFC 1337's protection is optional, off in Linux).
		if !eventually(func() bool { s := ours.Info().State; return s == "TIME-WAIT" || s == "CLOSED" }) {
			t.Fatalf("our connection is %s, want TIME-WAIT\n%s", ours.Info().State, x.describe())
		}
	} else {
		// The passive closer's LAST-ACK ends in CLOSED, and the
		// connection is forgotten.
		if !eventually(func() bool { return x.TCP.Stats().Connections == 0 }) {
			t.Errorf("our server still has %d connections after LAST-ACK\n%s", x.TCP.Stats().Connections, x.describe())
		}
	}
}

// TestTCPEcho sends many small writes through an echo server and checks
// the echo, in two shapes: pipelined (a writer and a reader at once, which
// Nagle coalesces) and lockstep (each message waits for its echo, where
// Nagle and delayed ACKs must not add delays).
func TestTCPEcho(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, d := range directions {
			t.Run(fmt.Sprintf("%s/%s", family(v6), d.name), func(t *testing.T) {
				t.Parallel()
				x := newMixedTCP(t, interop.Options{})
				client, server, addr := x.roles(d, v6, 7)
				ln, err := server.Listen(addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						go func() {
							defer c.Close()
							if _, err := io.Copy(c, c); err == nil {
								c.(interface{ CloseWrite() error }).CloseWrite()
							}
						}()
					}
				}()
				dial := func() net.Conn {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					c, err := client.Dial(ctx, addr)
					if err != nil {
						t.Fatalf("dial: %v\n%s", err, x.describe())
					}
					t.Cleanup(func() { c.Close() })
					return c
				}
				r := rand.New(rand.NewPCG(7, 7))
				msgs := make([][]byte, 5000)
				var all []byte
				for i := range msgs {
					msgs[i] = make([]byte, 1+r.IntN(100))
					for j := range msgs[i] {
						msgs[i][j] = byte(r.Uint32())
					}
					all = append(all, msgs[i]...)
				}

				t.Run("pipelined", func(t *testing.T) {
					c := dial()
					var got []byte
					start := time.Now()
					within(t, 20*time.Second, x.describe, []net.Conn{c}, func() error {
						for _, m := range msgs {
							if _, err := c.Write(m); err != nil {
								return fmt.Errorf("write: %w", err)
							}
						}
						return c.(interface{ CloseWrite() error }).CloseWrite()
					}, func() error {
						var err error
						got, err = io.ReadAll(c)
						return err
					})
					if !bytes.Equal(got, all) {
						t.Fatalf("echo of %d writes (%d bytes) came back as %d bytes, different", len(msgs), len(all), len(got))
					}
					t.Logf("%d writes echoed in %v", len(msgs), time.Since(start).Round(time.Millisecond))
				})

				t.Run("lockstep", func(t *testing.T) {
					c := dial()
					const rounds = 500
					start := time.Now()
					within(t, 20*time.Second, x.describe, []net.Conn{c}, func() error {
						buf := make([]byte, 100)
						for i, m := range msgs[:rounds] {
							if _, err := c.Write(m); err != nil {
								return fmt.Errorf("write %d: %w", i, err)
							}
							if _, err := io.ReadFull(c, buf[:len(m)]); err != nil {
								return fmt.Errorf("read echo %d: %w", i, err)
							}
							if !bytes.Equal(buf[:len(m)], m) {
								return fmt.Errorf("echo %d is %x, want %x", i, buf[:len(m)], m)
							}
						}
						return nil
					})
					elapsed := time.Since(start)
					t.Logf("%d round trips in %v (%v each)", rounds, elapsed.Round(time.Millisecond), (elapsed / rounds).Round(time.Microsecond))
					// A delayed ACK or a Nagle wait in the loop costs tens
					// of milliseconds a round; none should happen.
					if per := elapsed / rounds; per > 10*time.Millisecond {
						t.Errorf("%v per round trip: something waits for a timer\n%s", per, x.describe())
					}
				})
			})
		}
	}
}

// TestTCPLostTailBeforeFIN loses, once, the last data segment before a FIN
// that travels alone, so the FIN arrives beyond a hole. The receiver must
// keep the FIN for later and answer it at once with a duplicate ACK (RFC
// 5681 §4.2: an out-of-order segment is ACKed immediately) so that the
// sender learns of the hole before its RTO. The client sends, the server
// receives.
func TestTCPLostTailBeforeFIN(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, d := range directions {
			t.Run(fmt.Sprintf("%s/%s", family(v6), d.name), func(t *testing.T) {
				t.Parallel()
				// The link's Drop hook sees every packet in order on each
				// direction's goroutine: it drops the tail and watches
				// what follows.
				var (
					dropped, finPassed, resent, dupAcked atomic.Bool
					tailSeq                              atomic.Uint32
				)
				dataAToB := d.labnetClient // side A is ours
				drop := func(aToB bool, pkt []byte) bool {
					h := tcpHeader(pkt)
					n, flags := len(h.Payload()), h.Flags()
					if aToB != dataAToB {
						if finPassed.Load() && !resent.Load() && n == 0 && h.AckNumber() == tailSeq.Load() {
							dupAcked.Store(true)
						}
						return false
					}
					switch {
					case !dropped.Load() && n > 0 && flags&header.TCPFlagPsh != 0 && flags&header.TCPFlagFin == 0:
						tailSeq.Store(h.SequenceNumber())
						dropped.Store(true)
						return true
					case dropped.Load() && flags&header.TCPFlagFin != 0 && n == 0:
						finPassed.Store(true)
					case dropped.Load() && n > 0 && h.SequenceNumber() == tailSeq.Load():
						resent.Store(true)
					}
					return false
				}
				x := newMixedTCP(t, interop.Options{Drop: drop})
				client, server, addr := x.roles(d, v6, 9)
				cc, sc := connect(t, client, server, addr, x.describe)
				data := pattern(3000)
				var got []byte
				start := time.Now()
				within(t, 10*time.Second, x.describe, []net.Conn{cc, sc}, func() error {
					if _, err := cc.Write(data); err != nil {
						return err
					}
					// Let the data go before the FIN, so the FIN travels
					// alone.
					time.Sleep(20 * time.Millisecond)
					return cc.(interface{ CloseWrite() error }).CloseWrite()
				}, func() error {
					var err error
					got, err = io.ReadAll(sc)
					return err
				})
				t.Logf("%d bytes in %v", len(got), time.Since(start).Round(time.Millisecond))
				if !bytes.Equal(got, data) {
					t.Errorf("server read %d bytes, want the %d sent", len(got), len(data))
				}
				switch {
				case !dropped.Load() || !finPassed.Load():
					t.Fatalf("the case did not arise (tail dropped %v, FIN alone after it %v)", dropped.Load(), finPassed.Load())
				case !dupAcked.Load():
					t.Errorf("the receiver sent no duplicate ACK for the FIN beyond the hole before the tail was resent\n%s", x.describe())
				}
			})
		}
	}
}

// tcpHeader returns the TCP header of an IPv4 or IPv6 packet.
func tcpHeader(pkt []byte) header.TCP {
	if header.IPVersion(pkt) == header.IPv4Version {
		return header.TCP(header.IPv4(pkt).Payload())
	}
	return header.TCP(header.IPv6(pkt).Payload())
}
