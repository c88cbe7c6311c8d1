package wire_test

import "net/netip"

// Packets as they appear on the wire. Every checksum in them was computed
// outside this package (by hand for echoRequestV4, see its comment; by an
// independent script for the rest) and is re-verified in the tests against
// naiveChecksum, not against wire.Checksum.

var (
	hostA4   = netip.MustParseAddr("10.0.1.2")
	hostB4   = netip.MustParseAddr("10.0.2.10")
	router4  = netip.MustParseAddr("10.0.1.1")
	mdns4    = netip.MustParseAddr("224.0.0.251")
	hostA6   = netip.MustParseAddr("2001:db8:1::2")
	hostB6   = netip.MustParseAddr("2001:db8:2::a")
	router6  = netip.MustParseAddr("2001:db8:1::1")
	echoData = []byte("abcdefghijklmnop")
)

// echoRequestV4 is a ping from 10.0.1.2 to 10.0.2.10 with 16 bytes of data,
// followed by the two bytes of padding that an Ethernet frame's 46-byte
// minimum payload adds.
//
// Header checksum by hand, adding the ten words with the checksum as zero:
// 4500+002c=452c, +1c46=6172, +4000=a172, +4001=e173, +0000=e173,
// +0a00=eb73, +0102=ec75, +0a00=f675, +020a=f87f (no carries);
// ^f87f = 0780.
var echoRequestV4 = []byte{
	// IPv4 header
	0x45, 0x00, 0x00, 0x2c, // version 4, IHL 5, TOS 0, total length 44
	0x1c, 0x46, 0x40, 0x00, // ID 0x1c46, flags DF, fragment offset 0
	0x40, 0x01, 0x07, 0x80, // TTL 64, protocol 1 (ICMP), checksum 0x0780
	0x0a, 0x00, 0x01, 0x02, // src 10.0.1.2
	0x0a, 0x00, 0x02, 0x0a, // dst 10.0.2.10
	// ICMP
	0x08, 0x00, 0xa2, 0x7f, // type 8 (echo), code 0, checksum 0xa27f
	0x12, 0x34, 0x00, 0x01, // ident 0x1234, seq 1
	'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h',
	'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p',
	// Ethernet padding, not part of the datagram
	0x00, 0x00,
}

// timeExceededV4 is what the router 10.0.1.1 sends back when echoRequestV4
// arrives with TTL 1: ICMP time exceeded quoting the whole original datagram,
// as Linux does (RFC 1812 §4.3.2.3 allows up to 576 bytes).
var timeExceededV4 = []byte{
	// IPv4 header
	0x45, 0xc0, 0x00, 0x48, // version 4, IHL 5, TOS 0xc0 (CS6), total length 72
	0xa1, 0xb2, 0x00, 0x00, // ID 0xa1b2, no flags
	0x40, 0x01, 0xc2, 0x40, // TTL 64, protocol 1 (ICMP), checksum 0xc240
	0x0a, 0x00, 0x01, 0x01, // src 10.0.1.1
	0x0a, 0x00, 0x01, 0x02, // dst 10.0.1.2
	// ICMP
	0x0b, 0x00, 0xf4, 0xff, // type 11 (time exceeded), code 0 (TTL), checksum 0xf4ff
	0x00, 0x00, 0x00, 0x00, // unused
	// the original datagram as received: TTL 1, its own checksum 0x4680
	0x45, 0x00, 0x00, 0x2c,
	0x1c, 0x46, 0x40, 0x00,
	0x01, 0x01, 0x46, 0x80,
	0x0a, 0x00, 0x01, 0x02,
	0x0a, 0x00, 0x02, 0x0a,
	0x08, 0x00, 0xa2, 0x7f,
	0x12, 0x34, 0x00, 0x01,
	'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h',
	'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p',
}

// igmpReportV4 is an IGMPv2 membership report for 224.0.0.251 with the Router
// Alert option that RFC 2236 §2 requires (RFC 2113): IHL 6.
var igmpReportV4 = []byte{
	// IPv4 header
	0x46, 0xc0, 0x00, 0x20, // version 4, IHL 6, TOS 0xc0, total length 32
	0x00, 0x00, 0x40, 0x00, // ID 0, flags DF
	0x01, 0x02, 0xf8, 0x1a, // TTL 1, protocol 2 (IGMP), checksum 0xf81a
	0x0a, 0x00, 0x01, 0x02, // src 10.0.1.2
	0xe0, 0x00, 0x00, 0xfb, // dst 224.0.0.251
	0x94, 0x04, 0x00, 0x00, // option: Router Alert (copied, type 20), length 4, value 0
	// IGMPv2
	0x16, 0x00, 0x09, 0x04, // type 0x16 (v2 report), max resp 0, checksum 0x0904
	0xe0, 0x00, 0x00, 0xfb, // group 224.0.0.251
}

// recordRouteV4 is an empty echo request carrying a Record Route option with
// one free slot (7 bytes) and an End of Option List byte padding the options
// to 8 bytes: IHL 7.
var recordRouteV4 = []byte{
	// IPv4 header
	0x47, 0x00, 0x00, 0x24, // version 4, IHL 7, TOS 0, total length 36
	0x00, 0x01, 0x00, 0x00, // ID 1, no flags
	0x40, 0x01, 0x56, 0xc6, // TTL 64, protocol 1 (ICMP), checksum 0x56c6
	0x0a, 0x00, 0x01, 0x02, // src 10.0.1.2
	0x0a, 0x00, 0x02, 0x0a, // dst 10.0.2.10
	0x07, 0x07, 0x04, 0x00, // option: Record Route, length 7, pointer 4, route...
	0x00, 0x00, 0x00, 0x00, // ... data (3 more bytes), End of Option List
	// ICMP
	0x08, 0x00, 0xf7, 0xf5, // type 8 (echo), code 0, checksum 0xf7f5
	0x00, 0x07, 0x00, 0x03, // ident 7, seq 3
}

// fragmentV4 is a middle fragment of a UDP datagram: MF set, offset 185
// (1480 bytes), eight bytes of data.
var fragmentV4 = []byte{
	// IPv4 header
	0x45, 0x00, 0x00, 0x1c, // version 4, IHL 5, TOS 0, total length 28
	0xab, 0xcd, 0x20, 0xb9, // ID 0xabcd, flags MF, fragment offset 185
	0x40, 0x11, 0x97, 0x3f, // TTL 64, protocol 17 (UDP), checksum 0x973f
	0x0a, 0x00, 0x01, 0x02, // src 10.0.1.2
	0x0a, 0x00, 0x02, 0x0a, // dst 10.0.2.10
	0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xba, 0xbe,
}

// echoRequestV6 is a ping from 2001:db8:1::2 to 2001:db8:2::a with traffic
// class 0xb8 (DSCP EF) and flow label 0x12345, so that both straddle a
// nibble boundary.
var echoRequestV6 = []byte{
	// IPv6 header
	0x6b, 0x81, 0x23, 0x45, // version 6, traffic class 0xb8, flow label 0x12345
	0x00, 0x10, 0x3a, 0x40, // payload length 16, next header 58 (ICMPv6), hop limit 64
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, // src 2001:db8:1::2
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00, 0x00, // dst 2001:db8:2::a
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a,
	// ICMPv6
	0x80, 0x00, 0xce, 0x85, // type 128 (echo request), code 0, checksum 0xce85
	0x00, 0x42, 0x00, 0x07, // ident 0x42, seq 7
	'l', 'a', 'b', 'n', 'e', 't', '!', '!',
}

// fragNeededV4 is an ICMP message (without its IP header): destination
// unreachable, fragmentation needed, next-hop MTU 1400 (RFC 1191 §4), quoting
// the header and first eight bytes of a 1500-byte DF UDP datagram, the
// minimum RFC 792 asks for.
var fragNeededV4 = []byte{
	0x03, 0x04, 0x1d, 0x55, // type 3 (unreachable), code 4 (frag needed), checksum 0x1d55
	0x00, 0x00, 0x05, 0x78, // unused, next-hop MTU 1400
	// quoted IPv4 header: total length 1500, DF, TTL 63, UDP, checksum 0x1f06
	0x45, 0x00, 0x05, 0xdc,
	0x00, 0x00, 0x40, 0x00,
	0x3f, 0x11, 0x1f, 0x06,
	0x0a, 0x00, 0x01, 0x02,
	0x0a, 0x00, 0x02, 0x0a,
	// first eight bytes of the datagram: UDP 54321 -> 53, length 1480
	0xd4, 0x31, 0x00, 0x35, 0x05, 0xc8, 0x00, 0x00,
}

// packetTooBigV6 is an ICMPv6 message (without its IPv6 header) from
// 2001:db8:1::1 to 2001:db8:1::2: packet too big, MTU 1280, quoting the IPv6
// header of a 1440-byte UDP packet.
var packetTooBigV6 = []byte{
	0x02, 0x00, 0xca, 0xe5, // type 2 (packet too big), code 0, checksum 0xcae5
	0x00, 0x00, 0x05, 0x00, // MTU 1280
	0x60, 0x00, 0x00, 0x00, // quoted: version 6, class 0, flow 0
	0x05, 0x78, 0x11, 0x3f, // payload length 1400, UDP, hop limit 63
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a,
}
