package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/stack/wire"
)

// UDP datagrams as they appear on the wire. Every checksum was computed by an
// independent script (RFC 768 pseudo-header for IPv4, RFC 8200 §8.1 for
// IPv6) and is re-verified below against naiveUDPChecksum, not wire's code.

// dnsQueryV4 is a whole IPv4 packet: UDP 10.0.1.2:54321 -> 10.0.2.10:53 with
// 11 bytes of data, an odd count, so the checksum pads the last byte.
var dnsQueryV4 = []byte{
	// IPv4 header
	0x45, 0x00, 0x00, 0x27, // version 4, IHL 5, TOS 0, total length 39
	0x00, 0x01, 0x40, 0x00, // ID 1, flags DF
	0x40, 0x11, 0x23, 0xba, // TTL 64, protocol 17 (UDP), checksum 0x23ba
	0x0a, 0x00, 0x01, 0x02, // src 10.0.1.2
	0x0a, 0x00, 0x02, 0x0a, // dst 10.0.2.10
	// UDP
	0xd4, 0x31, 0x00, 0x35, // src port 54321, dst port 53
	0x00, 0x13, 0x2d, 0x89, // length 19, checksum 0x2d89
	'h', 'e', 'l', 'l', 'o', ',', ' ', 'l', 'a', 'b', '!',
}

// echoV6 is a UDP datagram (without its IPv6 header) from
// [2001:db8:1::2]:5353 to [2001:db8:2::a]:7 carrying "ping".
var echoV6 = []byte{
	0x14, 0xe9, 0x00, 0x07, // src port 5353, dst port 7 (echo)
	0x00, 0x0c, 0xb0, 0x94, // length 12, checksum 0xb094
	'p', 'i', 'n', 'g',
}

// allOnesV4 is a datagram 10.0.1.2:4369 -> 10.0.2.10:8738 whose two data
// bytes make the computed checksum zero, so it is sent as 0xffff (RFC 768).
var allOnesV4 = []byte{
	0x11, 0x11, 0x22, 0x22, // src port 4369, dst port 8738
	0x00, 0x0a, 0xff, 0xff, // length 10, checksum 0xffff (computed 0x0000)
	0xb5, 0x9b,
}

// noChecksumV4 is a datagram 10.0.1.2:1234 -> 10.0.2.10:5678 sent without a
// checksum (zero); its real checksum would be 0x096a.
var noChecksumV4 = []byte{
	0x04, 0xd2, 0x16, 0x2e, // src port 1234, dst port 5678
	0x00, 0x0b, 0x00, 0x00, // length 11, no checksum
	'a', 'b', 'c',
}

// naiveUDPChecksum is the checksum a sender computes for msg (its checksum
// field taken as zero) without wire: one's complement sum of the
// pseudo-header and the datagram, with a computed zero sent as 0xffff.
func naiveUDPChecksum(msg []byte, src, dst netip.Addr) uint16 {
	cs := naiveChecksum(slices.Concat(naivePseudoHeader(wire.ProtoUDP, src, dst, len(msg)), withChecksumZero(msg, 6)))
	if cs == 0 {
		cs = 0xffff
	}
	return cs
}

// naiveUDPValid says whether msg's checksum verifies, by RFC 768 and RFC 8200
// §8.1, without wire.
func naiveUDPValid(msg []byte, src, dst netip.Addr) bool {
	if binary.BigEndian.Uint16(msg[6:]) == 0 {
		return src.Is4()
	}
	return naiveChecksum(slices.Concat(naivePseudoHeader(wire.ProtoUDP, src, dst, len(msg)), msg)) == 0
}

// udpView collects every accessor of a checked wire.UDP.
type udpView struct {
	SrcPort, DstPort uint16
	Length           int
	Checksum         uint16
	Payload          []byte
}

func udpViewOf(v wire.UDP) udpView {
	return udpView{SrcPort: v.SrcPort(), DstPort: v.DstPort(), Length: v.Length(), Checksum: v.Checksum(), Payload: v.Payload()}
}

type udpCase struct {
	name     string
	msg      []byte
	src, dst netip.Addr
	want     wire.UDPHeader
	payload  []byte
	// encoded is what Marshal writes for want and payload, when it is not
	// msg (a datagram sent without a checksum comes back with one).
	encoded []byte
}

func udpCases() []udpCase {
	return []udpCase{
		{
			name: "dns query v4",
			msg:  dnsQueryV4[20:],
			src:  hostA4, dst: hostB4,
			want:    wire.UDPHeader{SrcPort: 54321, DstPort: 53, Length: 19, Checksum: 0x2d89},
			payload: []byte("hello, lab!"),
		},
		{
			name: "echo v6",
			msg:  echoV6,
			src:  hostA6, dst: hostB6,
			want:    wire.UDPHeader{SrcPort: 5353, DstPort: 7, Length: 12, Checksum: 0xb094},
			payload: []byte("ping"),
		},
		{
			name: "computed zero sent as all ones",
			msg:  allOnesV4,
			src:  hostA4, dst: hostB4,
			want:    wire.UDPHeader{SrcPort: 0x1111, DstPort: 0x2222, Length: 10, Checksum: 0xffff},
			payload: []byte{0xb5, 0x9b},
		},
		{
			name: "no checksum v4",
			msg:  noChecksumV4,
			src:  hostA4, dst: hostB4,
			want:    wire.UDPHeader{SrcPort: 1234, DstPort: 5678, Length: 11},
			payload: []byte("abc"),
			encoded: []byte{0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0b, 0x09, 0x6a, 'a', 'b', 'c'},
		},
	}
}

func TestUDPLiterals(t *testing.T) {
	for _, tc := range udpCases() {
		t.Run(tc.name, func(t *testing.T) {
			// The literal is right by an independent computation.
			if !naiveUDPValid(tc.msg, tc.src, tc.dst) {
				t.Fatalf("literal's checksum %#04x does not verify", tc.want.Checksum)
			}
			encoded := tc.encoded
			if encoded == nil {
				encoded = tc.msg
			}
			if got, want := binary.BigEndian.Uint16(encoded[6:]), naiveUDPChecksum(tc.msg, tc.src, tc.dst); got != want {
				t.Fatalf("table checksum %#04x, naive %#04x", got, want)
			}

			t.Run("decode", func(t *testing.T) {
				// Bytes past Length (IP payload the datagram does not
				// claim) are ignored.
				for _, pad := range []int{0, 1, 6} {
					b := slices.Concat(tc.msg, bytes.Repeat([]byte{0xee}, pad))
					v := wire.UDP(b)
					if err := v.Check(); err != nil {
						t.Fatalf("pad %d: Check() = %v", pad, err)
					}
					want := udpView{
						SrcPort: tc.want.SrcPort, DstPort: tc.want.DstPort, Length: tc.want.Length,
						Checksum: tc.want.Checksum, Payload: tc.payload,
					}
					if diff := cmp.Diff(want, udpViewOf(v), cmpOpts...); diff != "" {
						t.Errorf("pad %d: view accessors mismatch (-want +got):\n%s", pad, diff)
					}
					if !v.ChecksumValid(tc.src, tc.dst) {
						t.Errorf("pad %d: ChecksumValid(%v, %v) = false", pad, tc.src, tc.dst)
					}
					h, payload, err := wire.ParseUDP(b)
					if err != nil {
						t.Fatalf("pad %d: ParseUDP() error = %v", pad, err)
					}
					if diff := cmp.Diff(tc.want, h); diff != "" {
						t.Errorf("pad %d: ParseUDP() header mismatch (-want +got):\n%s", pad, diff)
					}
					if diff := cmp.Diff(tc.payload, payload); diff != "" {
						t.Errorf("pad %d: ParseUDP() payload mismatch (-want +got):\n%s", pad, diff)
					}
					if &payload[0] != &b[8] {
						t.Errorf("pad %d: payload does not alias the datagram", pad)
					}
				}
				// The pseudo-header is covered: another destination fails
				// (unless there is no checksum at all).
				other := netip.MustParseAddr("10.9.9.9")
				if tc.src.Is6() {
					other = netip.MustParseAddr("2001:db8:9::9")
				}
				if got := wire.UDP(tc.msg).ChecksumValid(tc.src, other); got != (tc.want.Checksum == 0) {
					t.Errorf("ChecksumValid(%v, %v) = %v", tc.src, other, got)
				}
			})

			t.Run("encode", func(t *testing.T) {
				h := tc.want
				h.Length, h.Checksum = 0xdead, 0xbeef // ignored: Encode computes them
				if diff := cmp.Diff(encoded, h.Marshal(tc.payload, tc.src, tc.dst)); diff != "" {
					t.Errorf("Marshal() mismatch (-want +got):\n%s", diff)
				}
				// Encode around data already in place, and no further.
				buf := bytes.Repeat([]byte{0xaa}, len(encoded)+4)
				copy(buf[8:], tc.payload)
				h.Encode(buf, len(tc.payload), tc.src, tc.dst)
				if diff := cmp.Diff(encoded, buf[:len(encoded)]); diff != "" {
					t.Errorf("Encode() mismatch (-want +got):\n%s", diff)
				}
				if !bytes.Equal(buf[len(encoded):], []byte{0xaa, 0xaa, 0xaa, 0xaa}) {
					t.Errorf("Encode() wrote past the datagram: % x", buf[len(encoded):])
				}
			})
		})
	}
}

// The whole IPv4 packet parses layer by layer.
func TestUDPInIPv4(t *testing.T) {
	if naiveChecksum(dnsQueryV4[:20]) != 0 {
		t.Fatalf("literal's IPv4 header checksum is wrong")
	}
	ip, payload, err := wire.ParseIPv4(dnsQueryV4)
	if err != nil {
		t.Fatalf("ParseIPv4() = %v", err)
	}
	if ip.Protocol != wire.ProtoUDP {
		t.Fatalf("protocol %d, want %d", ip.Protocol, wire.ProtoUDP)
	}
	u := wire.UDP(payload)
	if err := u.Check(); err != nil {
		t.Fatalf("UDP Check() = %v", err)
	}
	if !u.ChecksumValid(ip.Src, ip.Dst) {
		t.Errorf("UDP checksum does not verify with the packet's addresses")
	}
	h := wire.UDPHeader{SrcPort: 54321, DstPort: 53}
	out := (&wire.IPv4Header{ID: 1, Flags: wire.IPv4FlagDF, TTL: 64, Protocol: wire.ProtoUDP, Src: hostA4, Dst: hostB4}).
		Marshal(h.Marshal([]byte("hello, lab!"), hostA4, hostB4))
	if diff := cmp.Diff(dnsQueryV4, out); diff != "" {
		t.Errorf("IPv4(UDP) Marshal mismatch (-want +got):\n%s", diff)
	}
}

// RFC 768 lets an IPv4 sender omit the checksum; RFC 8200 §8.1 forbids it
// over IPv6.
func TestUDPZeroChecksum(t *testing.T) {
	v := wire.UDP(noChecksumV4)
	if !v.ChecksumValid(hostA4, hostB4) {
		t.Errorf("IPv4: zero checksum rejected")
	}
	if v.ChecksumValid(hostA6, hostB6) {
		t.Errorf("IPv6: zero checksum accepted")
	}
	// 0xffff is a real checksum (computed zero), valid over both.
	if !wire.UDP(allOnesV4).ChecksumValid(hostA4, hostB4) {
		t.Errorf("0xffff checksum rejected")
	}
}

func TestUDPCheck(t *testing.T) {
	withLength := func(b []byte, n uint16) []byte {
		c := slices.Clone(b)
		binary.BigEndian.PutUint16(c[4:], n)
		return c
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, wire.ErrTruncated},
		{"7 bytes", echoV6[:7], wire.ErrTruncated},
		{"length 0 (jumbogram)", withLength(echoV6, 0), wire.ErrUDPLength},
		{"length 7", withLength(echoV6, 7), wire.ErrUDPLength},
		{"length past buffer", withLength(echoV6, 13), wire.ErrUDPLength},
		{"length past truncated buffer", echoV6[:11], wire.ErrUDPLength},
		{"length 8 in 12 bytes", withLength(echoV6, 8), nil},
		{"header only", withLength(echoV6[:8], 8), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := wire.UDP(tc.b).Check()
			h, payload, perr := wire.ParseUDP(tc.b)
			checkParseErr(t, err, perr)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				if h.Length != 8 || len(payload) != 0 {
					t.Errorf("ParseUDP() = %+v with %d bytes of payload", h, len(payload))
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("Check() = %v, want %v", err, tc.want)
			}
			if diff := cmp.Diff(wire.UDPHeader{}, h); diff != "" || payload != nil {
				t.Errorf("ParseUDP() on error returned %+v, %v", h, payload)
			}
		})
	}
}

func TestUDPChecksumDetectsBitFlips(t *testing.T) {
	for _, tc := range udpCases() {
		if tc.want.Checksum == 0 {
			continue // nothing to detect with
		}
		for i := range tc.msg {
			for bit := range 8 {
				b := slices.Clone(tc.msg)
				b[i] ^= 1 << bit
				v := wire.UDP(b)
				if v.Check() != nil {
					continue // a length flip the length check catches
				}
				if v.ChecksumValid(tc.src, tc.dst) {
					t.Errorf("%s: byte %d bit %d flipped, checksum still valid", tc.name, i, bit)
				}
			}
		}
	}
}
