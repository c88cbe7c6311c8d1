package overlay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/stack/wire"
)

// Every socket in these tests is on loopback.
var (
	loopback4   = netip.MustParseAddr("127.0.0.1")
	testNextHop = netip.MustParseAddr("10.0.0.2")
)

const (
	testVNI     = 7
	datagramLen = 1400 // UDP payload, before sealing
)

func listen(tb testing.TB, opts Options) *Conn {
	tb.Helper()
	c, err := Listen(netip.AddrPortFrom(loopback4, 0), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// stream makes numbered GENEVE packets of one size: an IPv4 packet whose
// payload is the sequence number, fixed pseudo-random bytes, and the sequence
// number again, so that a receiver can check order and content cheaply and
// notice datagrams run together or cut apart.
type stream struct {
	tmpl       []byte
	seqA, seqB int // offsets of the two copies of the sequence number
}

func newStream(size int) *stream {
	ipLen := size - EncapLen(testNextHop)
	body := make([]byte, ipLen-wire.IPv4MinHeaderLen)
	r := rand.New(rand.NewPCG(1, uint64(size)))
	for i := range body {
		body[i] = byte(r.Uint32())
	}
	h := wire.IPv4Header{TTL: 64, Protocol: wire.ProtoUDP, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.9")}
	pkt, err := AppendPacket(nil, testVNI, testNextHop, h.Marshal(body))
	if err != nil {
		panic(err)
	}
	return &stream{tmpl: pkt, seqA: EncapLen(testNextHop) + wire.IPv4MinHeaderLen, seqB: len(pkt) - 8}
}

// packet writes datagram seq into buf, which has len(s.tmpl) bytes.
func (s *stream) packet(buf []byte, seq uint64) []byte {
	copy(buf, s.tmpl)
	binary.BigEndian.PutUint64(buf[s.seqA:], seq)
	binary.BigEndian.PutUint64(buf[s.seqB:], seq)
	return buf[:len(s.tmpl)]
}

// check returns the sequence number of a received packet, or an error if it
// is not one of the stream's.
func (s *stream) check(h Header) (uint64, error) {
	b := []byte(h)
	if len(b) != len(s.tmpl) {
		return 0, fmt.Errorf("packet of %d bytes, want %d", len(b), len(s.tmpl))
	}
	if h.VNI() != testVNI || h.NextHop() != testNextHop {
		return 0, fmt.Errorf("VNI %d next hop %v", h.VNI(), h.NextHop())
	}
	seq := binary.BigEndian.Uint64(b[s.seqA:])
	if seq2 := binary.BigEndian.Uint64(b[s.seqB:]); seq2 != seq {
		return 0, fmt.Errorf("sequence numbers %d and %d in one packet", seq, seq2)
	}
	if !bytes.Equal(b[:s.seqA], s.tmpl[:s.seqA]) || !bytes.Equal(b[s.seqA+8:s.seqB], s.tmpl[s.seqA+8:s.seqB]) {
		return 0, fmt.Errorf("packet %d: content differs", seq)
	}
	return seq, nil
}

type transferConfig struct {
	n         int           // datagrams to send
	size      int           // bytes each, before sealing
	train     func() int    // datagrams per WriteBatch (or WriteDatagrams)
	readBatch int           // len(msgs) per ReadBatch
	window    int           // most datagrams sent and not yet received
	idle      time.Duration // the receiver gives up after this long without a datagram
}

type transferResult struct {
	received, lost int
	elapsed        time.Duration
	err            error // the first bad packet, or a failed read or write
}

// transfer sends cfg.n numbered datagrams from snd to rcv in trains, paced by
// a window: the sender waits while cfg.window datagrams are in flight, so
// that a receiver that keeps up never sees its socket buffer overflow. It
// checks every datagram that arrives: content, sender, and order. Trains
// alternate between WriteBatch and WriteDatagrams.
func transfer(snd, rcv *Conn, cfg transferConfig) transferResult {
	s := newStream(cfg.size)
	var got atomic.Int64
	notify := make(chan struct{}, 1)
	done := make(chan transferResult, 1)
	start := time.Now()
	go func() {
		var res transferResult
		defer func() { done <- res }()
		msgs := make([]Message, cfg.readBatch)
		next := uint64(0)
		for res.received+res.lost < cfg.n {
			rcv.SetReadDeadline(time.Now().Add(cfg.idle))
			n, err := rcv.ReadBatch(msgs)
			if err != nil {
				res.err = fmt.Errorf("read after %d datagrams: %w", res.received, err)
				res.lost = cfg.n - res.received
				return
			}
			for _, m := range msgs[:n] {
				seq, err := s.check(m.Packet)
				switch {
				case err != nil:
				case m.Addr != snd.LocalAddr():
					err = fmt.Errorf("packet %d from %v, want %v", seq, m.Addr, snd.LocalAddr())
				case seq < next:
					err = fmt.Errorf("packet %d after %d: out of order", seq, next-1)
				}
				if err != nil {
					if res.err == nil {
						res.err = err
					}
				} else {
					res.lost += int(seq - next)
					next = seq + 1
				}
				res.received++
			}
			res.elapsed = time.Since(start)
			got.Add(int64(n))
			select {
			case notify <- struct{}{}:
			default:
			}
		}
	}()

	bufs := make([][]byte, maxSegments)
	for i := range bufs {
		bufs[i] = make([]byte, len(s.tmpl))
	}
	pkts := make([][]byte, 0, maxSegments)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var sendErr error
	var dgs []Datagram
	trains, split := 0, rand.New(rand.NewPCG(4, 5))
send:
	for sent := 0; sent < cfg.n; {
		k := min(cfg.train(), cfg.n-sent, maxSegments)
		for int64(sent+k)-got.Load() > int64(cfg.window) {
			timer.Reset(cfg.idle)
			select {
			case <-notify:
			case <-timer.C:
				break send // lost datagrams: the receiver will give up too
			}
		}
		pkts = pkts[:0]
		for i := range k {
			pkts = append(pkts, s.packet(bufs[i], uint64(sent+i)))
		}
		// Every other train goes as datagrams in two parts, split after
		// the GENEVE header as Link sends them, or at a random place.
		var err error
		if trains++; trains%2 == 0 {
			err = snd.WriteBatch(rcv.LocalAddr(), pkts)
		} else {
			dgs = dgs[:0]
			for _, p := range pkts {
				at := EncapLen(testNextHop)
				if trains%4 == 3 {
					at = split.IntN(len(p) + 1)
				}
				dgs = append(dgs, Datagram{Head: p[:at], Body: p[at:]})
			}
			err = snd.WriteDatagrams(rcv.LocalAddr(), dgs)
		}
		if err != nil {
			sendErr = err
			break
		}
		sent += k
	}
	res := <-done
	if res.err == nil && sendErr != nil {
		res.err = sendErr
	}
	return res
}

// fixed returns a train length function that always says n.
func fixed(n int) func() int { return func() int { return n } }

// randomTrains returns a train length function of 1 to max, repeatable.
func randomTrains(max int) func() int {
	r := rand.New(rand.NewPCG(2, 3))
	return func() int { return 1 + r.IntN(max) }
}
