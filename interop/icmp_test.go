package interop_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/labnet-dev/labnet/interop"
	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

const wait = 5 * time.Second

func newMixed(t *testing.T, o interop.Options) *interop.Mixed {
	t.Helper()
	m, err := interop.NewMixed(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func family(v6 bool) string {
	if v6 {
		return "ipv6"
	}
	return "ipv4"
}

// echoSizes are the payload sizes to try on a link of mtu: a ping(8)
// default and the largest that fits unfragmented.
func echoSizes(mtu int, v6 bool) []int {
	ipHeader := 20
	if v6 {
		ipHeader = 40
	}
	return []int{56, mtu - ipHeader - 8}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// TestEchoLabnetToGVisor pings the gVisor stack from ours.
func TestEchoLabnetToGVisor(t *testing.T) {
	for _, mtu := range []int{1500, 9000} {
		for _, v6 := range []bool{false, true} {
			for _, size := range echoSizes(mtu, v6) {
				t.Run(fmt.Sprintf("mtu=%d/%s/%d", mtu, family(v6), size), func(t *testing.T) {
					m := newMixed(t, interop.Options{MTU: mtu})
					ep, err := m.Labnet.OpenEcho(v6)
					if err != nil {
						t.Fatal(err)
					}
					defer ep.Close()
					dst, wantSrc, replyType := interop.AddrB4, interop.AddrA4, uint8(wire.ICMPv4EchoReply)
					if v6 {
						dst, wantSrc, replyType = interop.AddrB6, interop.AddrA6, wire.ICMPv6EchoReply
					}
					for seq := uint16(1); seq <= 3; seq++ {
						src, err := ep.Send(dst, seq, 0, pattern(size))
						if err != nil {
							t.Fatalf("Send: %v", err)
						}
						if src != wantSrc {
							t.Errorf("source %v, want %v", src, wantSrc)
						}
						var ev stack.EchoEvent
						select {
						case ev = <-ep.Events():
						case <-time.After(wait):
							t.Fatalf("seq %d: no reply in %v", seq, wait)
						}
						want := stack.EchoEvent{
							Reply: true, From: dst, Seq: seq, TTL: 64,
							Len: wire.ICMPHeaderLen + size, Type: replyType,
						}
						ev.At = time.Time{}
						if diff := cmp.Diff(want, ev, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
							t.Errorf("seq %d: event (-want +got):\n%s", seq, diff)
						}
					}
					// gVisor sends nothing unasked on this link (no MLD or
					// router solicitations without link-layer multicast), so
					// the link carried exactly the requests and replies.
					if ab, ba := m.Stats(); ab.Delivered != 3 || ba.Delivered != 3 {
						t.Errorf("link delivered %d requests and %d replies, want 3 each", ab.Delivered, ba.Delivered)
					}
				})
			}
		}
	}
}

// TestEchoGVisorToLabnet pings our stack from a gVisor ping socket
// (SOCK_DGRAM ICMP, as Linux's): the reply must carry the socket's
// identifier, the sequence number and the payload back.
func TestEchoGVisorToLabnet(t *testing.T) {
	for _, mtu := range []int{1500, 9000} {
		for _, v6 := range []bool{false, true} {
			for _, size := range echoSizes(mtu, v6) {
				t.Run(fmt.Sprintf("mtu=%d/%s/%d", mtu, family(v6), size), func(t *testing.T) {
					m := newMixed(t, interop.Options{MTU: mtu})
					dst := interop.AddrA4
					if v6 {
						dst = interop.AddrA6
					}
					p := openGVisorPing(t, m.GVisor, v6)
					for seq := uint16(1); seq <= 3; seq++ {
						data := pattern(size)
						from, reply := p.ping(t, dst, seq, data)
						if from != dst {
							t.Errorf("seq %d: reply from %v, want %v", seq, from, dst)
						}
						want := echoMsg{Type: uint8(header.ICMPv4EchoReply), Ident: p.ident(t), Seq: seq, Data: data}
						if v6 {
							want.Type = uint8(header.ICMPv6EchoReply)
						}
						if diff := cmp.Diff(want, reply); diff != "" {
							t.Errorf("seq %d: reply (-want +got):\n%s", seq, diff)
						}
					}
					if c := m.NIC.Counters(); c.RxPackets < 3 || c.TxPackets < 3 {
						t.Errorf("our interface counted %+v, want at least 3 in and 3 out", c)
					}
				})
			}
		}
	}
}

// echoMsg is the part of an ICMP or ICMPv6 echo message the tests compare.
type echoMsg struct {
	Type, Code uint8
	Ident, Seq uint16
	Data       []byte
}

// gvisorPing is a gVisor ICMP ping endpoint.
type gvisorPing struct {
	v6 bool
	ep tcpip.Endpoint
	wq *waiter.Queue
}

func openGVisorPing(t *testing.T, s *gstack.Stack, v6 bool) *gvisorPing {
	t.Helper()
	trans, netw := icmp.ProtocolNumber4, ipv4.ProtocolNumber
	if v6 {
		trans, netw = icmp.ProtocolNumber6, ipv6.ProtocolNumber
	}
	var wq waiter.Queue
	ep, err := s.NewEndpoint(trans, netw, &wq)
	if err != nil {
		t.Fatalf("gVisor ping endpoint: %v", err)
	}
	t.Cleanup(ep.Close)
	return &gvisorPing{v6: v6, ep: ep, wq: &wq}
}

// ident is the echo identifier gVisor chose: the endpoint's "port".
func (p *gvisorPing) ident(t *testing.T) uint16 {
	t.Helper()
	a, err := p.ep.GetLocalAddress()
	if err != nil {
		t.Fatalf("GetLocalAddress: %v", err)
	}
	return a.Port
}

// ping sends an echo request to dst and returns the next message the
// endpoint receives and who sent it. gVisor fills in the identifier and
// the checksum.
func (p *gvisorPing) ping(t *testing.T, dst netip.Addr, seq uint16, data []byte) (netip.Addr, echoMsg) {
	t.Helper()
	req := make([]byte, header.ICMPv4MinimumSize+len(data))
	copy(req[header.ICMPv4MinimumSize:], data)
	if p.v6 {
		h := header.ICMPv6(req)
		h.SetType(header.ICMPv6EchoRequest)
		h.SetSequence(seq)
	} else {
		h := header.ICMPv4(req)
		h.SetType(header.ICMPv4Echo)
		h.SetSequence(seq)
	}

	entry, readable := waiter.NewChannelEntry(waiter.ReadableEvents)
	p.wq.EventRegister(&entry)
	defer p.wq.EventUnregister(&entry)

	to := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFromSlice(dst.AsSlice())}
	if _, err := p.ep.Write(bytes.NewReader(req), tcpip.WriteOptions{To: &to}); err != nil {
		t.Fatalf("gVisor ping write: %v", err)
	}
	deadline := time.After(wait)
	for {
		var buf bytes.Buffer
		res, err := p.ep.Read(&buf, tcpip.ReadOptions{NeedRemoteAddr: true})
		if _, ok := err.(*tcpip.ErrWouldBlock); ok {
			select {
			case <-readable:
				continue
			case <-deadline:
				t.Fatalf("seq %d: no reply in %v", seq, wait)
			}
		}
		if err != nil {
			t.Fatalf("gVisor ping read: %v", err)
		}
		from, _ := netip.AddrFromSlice(res.RemoteAddr.Addr.AsSlice())
		b := buf.Bytes()
		if len(b) < header.ICMPv4MinimumSize {
			t.Fatalf("seq %d: %d-byte reply", seq, len(b))
		}
		// ICMPv4 and ICMPv6 echo messages share their layout (RFC 792,
		// RFC 4443 §4).
		h := header.ICMPv4(b)
		return from, echoMsg{
			Type: uint8(h.Type()), Code: uint8(h.Code()), Ident: h.Ident(), Seq: h.Sequence(),
			Data: b[header.ICMPv4MinimumSize:],
		}
	}
}
