package wire_test

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/stack/wire"
)

type icmpCase struct {
	name     string
	msg      []byte
	v6       bool
	src, dst netip.Addr // for the ICMPv6 pseudo-header
	want     wire.ICMPMessage
	view     icmpView
}

func icmpCases() []icmpCase {
	return []icmpCase{
		{
			name: "echo request v4",
			msg:  echoRequestV4[20:44],
			want: wire.ICMPMessage{Type: wire.ICMPv4Echo, Checksum: 0xa27f, Rest: 0x1234_0001, Body: echoData},
			view: icmpView{
				Type: wire.ICMPv4Echo, Checksum: 0xa27f, Rest: 0x1234_0001, Ident: 0x1234, Seq: 1,
				MTUv4: 1, MTUv6: 0x1234_0001, Body: echoData,
			},
		},
		{
			name: "echo request v4 no data",
			msg:  recordRouteV4[28:],
			want: wire.ICMPMessage{Type: wire.ICMPv4Echo, Checksum: 0xf7f5, Rest: 0x0007_0003},
			view: icmpView{
				Type: wire.ICMPv4Echo, Checksum: 0xf7f5, Rest: 0x0007_0003, Ident: 7, Seq: 3,
				MTUv4: 3, MTUv6: 0x0007_0003,
			},
		},
		{
			name: "time exceeded v4",
			msg:  timeExceededV4[20:],
			want: wire.ICMPMessage{
				Type: wire.ICMPv4TimeExceeded, Code: wire.ICMPv4TTLExceeded, Checksum: 0xf4ff,
				Body: timeExceededV4[28:],
			},
			view: icmpView{
				Type: wire.ICMPv4TimeExceeded, Code: wire.ICMPv4TTLExceeded, Checksum: 0xf4ff,
				Body: timeExceededV4[28:],
			},
		},
		{
			name: "fragmentation needed v4",
			msg:  fragNeededV4,
			want: wire.ICMPMessage{
				Type: wire.ICMPv4DestUnreach, Code: wire.ICMPv4FragNeeded, Checksum: 0x1d55,
				Rest: 1400, Body: fragNeededV4[8:],
			},
			view: icmpView{
				Type: wire.ICMPv4DestUnreach, Code: wire.ICMPv4FragNeeded, Checksum: 0x1d55,
				Rest: 1400, Ident: 0, Seq: 1400, MTUv4: 1400, MTUv6: 1400, Body: fragNeededV4[8:],
			},
		},
		{
			name: "echo request v6",
			msg:  echoRequestV6[40:],
			v6:   true, src: hostA6, dst: hostB6,
			want: wire.ICMPMessage{Type: wire.ICMPv6EchoRequest, Checksum: 0xce85, Rest: 0x0042_0007, Body: []byte("labnet!!")},
			view: icmpView{
				Type: wire.ICMPv6EchoRequest, Checksum: 0xce85, Rest: 0x0042_0007, Ident: 0x42, Seq: 7,
				MTUv4: 7, MTUv6: 0x0042_0007, Body: []byte("labnet!!"),
			},
		},
		{
			name: "packet too big v6",
			msg:  packetTooBigV6,
			v6:   true, src: router6, dst: hostA6,
			want: wire.ICMPMessage{Type: wire.ICMPv6PacketTooBig, Checksum: 0xcae5, Rest: 1280, Body: packetTooBigV6[8:]},
			view: icmpView{
				Type: wire.ICMPv6PacketTooBig, Checksum: 0xcae5, Rest: 1280, Seq: 1280,
				MTUv4: 1280, MTUv6: wire.IPv6MinMTU, Body: packetTooBigV6[8:],
			},
		},
	}
}

func TestICMPLiterals(t *testing.T) {
	for _, tc := range icmpCases() {
		t.Run(tc.name, func(t *testing.T) {
			// The literal's checksum is right by an independent computation.
			var naive uint16
			if tc.v6 {
				naive = naiveChecksumV6(withChecksumZero(tc.msg, 2), tc.src, tc.dst)
			} else {
				naive = naiveChecksum(withChecksumZero(tc.msg, 2))
			}
			if naive != tc.want.Checksum {
				t.Fatalf("table checksum %#04x, naive %#04x", tc.want.Checksum, naive)
			}

			t.Run("decode", func(t *testing.T) {
				v := wire.ICMP(tc.msg)
				if err := v.Check(); err != nil {
					t.Fatalf("Check() = %v", err)
				}
				if diff := cmp.Diff(tc.view, icmpViewOf(v), cmpOpts...); diff != "" {
					t.Errorf("view accessors mismatch (-want +got):\n%s", diff)
				}
				if tc.v6 {
					if !v.ChecksumValidV6(tc.src, tc.dst) {
						t.Errorf("ChecksumValidV6(%v, %v) = false", tc.src, tc.dst)
					}
					// The pseudo-header is covered: another destination
					// fails. (Swapping src and dst would not: the sum
					// commutes.)
					if v.ChecksumValidV6(tc.src, netip.MustParseAddr("2001:db8:9::9")) {
						t.Errorf("ChecksumValidV6 with wrong addresses = true")
					}
				} else if !v.ChecksumValidV4() {
					t.Errorf("ChecksumValidV4() = false")
				}

				m, err := wire.ParseICMP(tc.msg)
				if err != nil {
					t.Fatalf("ParseICMP() error = %v", err)
				}
				if diff := cmp.Diff(tc.want, m, cmpOpts...); diff != "" {
					t.Errorf("ParseICMP() mismatch (-want +got):\n%s", diff)
				}
				if m.Ident() != tc.view.Ident || m.Seq() != tc.view.Seq {
					t.Errorf("Ident/Seq = %#x/%d, want %#x/%d", m.Ident(), m.Seq(), tc.view.Ident, tc.view.Seq)
				}
				if len(m.Body) > 0 && &m.Body[0] != &tc.msg[8] {
					t.Errorf("Body does not alias the message")
				}
			})

			t.Run("encode", func(t *testing.T) {
				m := tc.want
				m.Checksum = 0xdead // ignored: Encode computes it
				if m.Len() != len(tc.msg) {
					t.Errorf("Len() = %d, want %d", m.Len(), len(tc.msg))
				}
				buf := bytes.Repeat([]byte{0xaa}, m.Len()+4)
				if tc.v6 {
					m.EncodeV6(buf, tc.src, tc.dst)
				} else {
					m.EncodeV4(buf)
				}
				if diff := cmp.Diff(tc.msg, buf[:m.Len()]); diff != "" {
					t.Errorf("Encode mismatch (-want +got):\n%s", diff)
				}
				if !bytes.Equal(buf[m.Len():], []byte{0xaa, 0xaa, 0xaa, 0xaa}) {
					t.Errorf("Encode wrote past Len(): % x", buf[m.Len():])
				}
			})
		})
	}
}

func TestICMPEcho(t *testing.T) {
	m := wire.Echo(wire.ICMPv4Echo, 0x1234, 1, echoData)
	want := wire.ICMPMessage{Type: wire.ICMPv4Echo, Rest: 0x1234_0001, Body: echoData}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("Echo() mismatch (-want +got):\n%s", diff)
	}
	if m.Ident() != 0x1234 || m.Seq() != 1 {
		t.Errorf("Ident/Seq = %#x/%d, want 0x1234/1", m.Ident(), m.Seq())
	}
	b := make([]byte, m.Len())
	m.EncodeV4(b)
	if diff := cmp.Diff(echoRequestV4[20:44], b); diff != "" {
		t.Errorf("EncodeV4() mismatch (-want +got):\n%s", diff)
	}

	m = wire.Echo(wire.ICMPv6EchoRequest, 0x42, 7, []byte("labnet!!"))
	b = make([]byte, m.Len())
	m.EncodeV6(b, hostA6, hostB6)
	if diff := cmp.Diff(echoRequestV6[40:], b); diff != "" {
		t.Errorf("EncodeV6() mismatch (-want +got):\n%s", diff)
	}

	// Checksums at the two ends of the range.
	reply := wire.Echo(wire.ICMPv4EchoReply, 0xffff, 0xffff, nil)
	b = make([]byte, reply.Len())
	reply.EncodeV4(b)
	if want := []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}; !bytes.Equal(b, want) {
		// 0000+ffff+ffff folds to ffff, checksum 0000.
		t.Errorf("EncodeV4(reply ffff/ffff) = % x, want % x", b, want)
	}
	zero := wire.Echo(wire.ICMPv4EchoReply, 0, 0, nil)
	b = make([]byte, zero.Len())
	zero.EncodeV4(b)
	if want := []byte{0, 0, 0xff, 0xff, 0, 0, 0, 0}; !bytes.Equal(b, want) {
		// An all-zero message: the sum is +0, the checksum ffff.
		t.Errorf("EncodeV4(all-zero reply) = % x, want % x", b, want)
	}
	if !wire.ICMP(b).ChecksumValidV4() {
		t.Errorf("all-zero reply: ChecksumValidV4() = false")
	}
}

// The RFC 792 minimum quote is the header and eight bytes of the datagram,
// so the quoted header's total length runs past the quote and Check rejects
// it; callers that dig into a quote must read the fixed fields themselves.
func TestICMPQuoteShorterThanTotalLength(t *testing.T) {
	m, err := wire.ParseICMP(fragNeededV4)
	if err != nil {
		t.Fatalf("ParseICMP() = %v", err)
	}
	if got := naiveChecksum(m.Body[:20]); got != 0 {
		t.Fatalf("literal's quoted header checksum is wrong: %#04x", got)
	}
	if err := wire.IPv4(m.Body).Check(); !errors.Is(err, wire.ErrTotalLen) {
		t.Errorf("IPv4(quote).Check() = %v, want %v", err, wire.ErrTotalLen)
	}
	// With the total length cut to what was quoted, it parses.
	quote := slices.Clone(m.Body)
	quote[2], quote[3] = 0, byte(len(quote))
	h, udp, err := wire.ParseIPv4(quote)
	if err != nil {
		t.Fatalf("ParseIPv4(quote) = %v", err)
	}
	if h.Flags&wire.IPv4FlagDF == 0 || h.Protocol != wire.ProtoUDP || h.Src != hostA4 || h.Dst != hostB4 || len(udp) != 8 {
		t.Errorf("quote = %+v, udp % x", h, udp)
	}
}

func TestICMPCheck(t *testing.T) {
	for n := range 8 {
		t.Run("", func(t *testing.T) {
			b := echoRequestV4[20 : 20+n]
			err := wire.ICMP(b).Check()
			if !errors.Is(err, wire.ErrTruncated) || !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("%d bytes: Check() = %v, want %v", n, err, wire.ErrTruncated)
			}
			m, perr := wire.ParseICMP(b)
			if !errors.Is(perr, wire.ErrTruncated) {
				t.Errorf("%d bytes: ParseICMP() error = %v, want %v", n, perr, wire.ErrTruncated)
			}
			if diff := cmp.Diff(wire.ICMPMessage{}, m); diff != "" {
				t.Errorf("%d bytes: ParseICMP() on error returned (-want +got):\n%s", n, diff)
			}
		})
	}
	b := echoRequestV4[20:28]
	if err := wire.ICMP(b).Check(); err != nil {
		t.Errorf("8 bytes: Check() = %v", err)
	}
	m, err := wire.ParseICMP(b)
	if err != nil || len(m.Body) != 0 {
		t.Errorf("8 bytes: ParseICMP() = %+v, %v", m, err)
	}
}

func TestICMPChecksumDetectsBitFlips(t *testing.T) {
	for _, tc := range icmpCases() {
		for i := range tc.msg {
			for bit := range 8 {
				b := slices.Clone(tc.msg)
				b[i] ^= 1 << bit
				v := wire.ICMP(b)
				if tc.v6 && v.ChecksumValidV6(tc.src, tc.dst) || !tc.v6 && v.ChecksumValidV4() {
					t.Errorf("%s: byte %d bit %d flipped, checksum still valid", tc.name, i, bit)
				}
			}
		}
	}
}
