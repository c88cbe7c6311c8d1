package overlay

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Packets as they appear in a UDP payload, written out by hand from RFC 8926
// §3.4 and §3.5.

var ipPayloadV4 = []byte{0x45, 0x00, 0x00, 0x14, 0xde, 0xad} // the first bytes of an IPv4 packet: GENEVE does not look inside
var ipPayloadV6 = []byte{0x60, 0x00, 0x00, 0x00}

// genevePacketV4 is what labnet sends for an IPv4 packet on network 0x123456
// whose next hop is 10.0.1.1.
var genevePacketV4 = []byte{
	0x02, 0x00, 0x08, 0x00, // version 0, opt len 2 (8 bytes), O=0 C=0, protocol type 0x0800 (IPv4)
	0x12, 0x34, 0x56, 0x00, // VNI 0x123456, reserved
	0xff, 0xf0, 0x01, 0x01, // option class 0xfff0, type 0x01 (next hop, not critical), length 1 (4 bytes)
	0x0a, 0x00, 0x01, 0x01, // 10.0.1.1
	0x45, 0x00, 0x00, 0x14, 0xde, 0xad, // payload
}

// genevePacketV6 is an OAM packet for an IPv6 packet on network 42 with an
// option labnet does not know, not critical, ahead of the next hop 2001:db8::1.
var genevePacketV6 = []byte{
	0x07, 0x80, 0x86, 0xdd, // version 0, opt len 7 (28 bytes), O=1 C=0, protocol type 0x86dd (IPv6)
	0x00, 0x00, 0x2a, 0x00, // VNI 42, reserved
	0x01, 0x02, 0x03, 0x01, // option class 0x0102, type 0x03 (not critical), length 1
	0xca, 0xfe, 0xba, 0xbe, //   its data
	0xff, 0xf0, 0x01, 0x04, // option class 0xfff0, type 0x01 (next hop), length 4 (16 bytes)
	0x20, 0x01, 0x0d, 0xb8, //   2001:db8::1
	0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x01,
	0x60, 0x00, 0x00, 0x00, // payload
}

// geneveNoOptions carries no options at all, and so no next hop.
var geneveNoOptions = []byte{
	0x00, 0x00, 0x08, 0x00, // version 0, opt len 0, protocol type 0x0800
	0xff, 0xff, 0xff, 0x00, // VNI 0xffffff (the largest)
	0x45, 0x00, 0x00, 0x14, 0xde, 0xad,
}

type geneveCase struct {
	name    string
	pkt     []byte
	hdr     Geneve
	payload []byte
}

func geneveCases() []geneveCase {
	return []geneveCase{
		{
			name: "IPv4 with next hop",
			pkt:  genevePacketV4,
			hdr: Geneve{ProtocolType: ProtoIPv4, VNI: 0x123456, Options: []Option{
				{Class: 0xfff0, Type: 0x01, Data: []byte{10, 0, 1, 1}},
			}},
			payload: ipPayloadV4,
		},
		{
			name: "IPv6, OAM, unknown option first",
			pkt:  genevePacketV6,
			hdr: Geneve{OAM: true, ProtocolType: ProtoIPv6, VNI: 42, Options: []Option{
				{Class: 0x0102, Type: 0x03, Data: []byte{0xca, 0xfe, 0xba, 0xbe}},
				{Class: 0xfff0, Type: 0x01, Data: netip.MustParseAddr("2001:db8::1").AsSlice()},
			}},
			payload: ipPayloadV6,
		},
		{
			name:    "no options",
			pkt:     geneveNoOptions,
			hdr:     Geneve{ProtocolType: ProtoIPv4, VNI: MaxVNI},
			payload: ipPayloadV4,
		},
	}
}

func TestGeneveParse(t *testing.T) {
	for _, tc := range geneveCases() {
		t.Run(tc.name, func(t *testing.T) {
			g, payload, err := Parse(tc.pkt)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tc.hdr, g); diff != "" {
				t.Errorf("Parse header (-want +got):\n%s", diff)
			}
			if !bytes.Equal(payload, tc.payload) {
				t.Errorf("payload = % x, want % x", payload, tc.payload)
			}
		})
	}
}

func TestGeneveEncode(t *testing.T) {
	for _, tc := range geneveCases() {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.hdr.Marshal(tc.payload); !bytes.Equal(got, tc.pkt) {
				t.Errorf("Marshal =\n% x\nwant\n% x", got, tc.pkt)
			}
			if n := tc.hdr.Len(); n != len(tc.pkt)-len(tc.payload) {
				t.Errorf("Len() = %d, want %d", n, len(tc.pkt)-len(tc.payload))
			}
		})
	}
}

func TestGeneveView(t *testing.T) {
	tests := []struct {
		pkt                  []byte
		optLen               int
		oam                  bool
		proto                uint16
		vni                  uint32
		nextHop              netip.Addr
		options, payloadWant []byte
	}{
		{genevePacketV4, 8, false, ProtoIPv4, 0x123456, netip.MustParseAddr("10.0.1.1"), genevePacketV4[8:16], ipPayloadV4},
		{genevePacketV6, 28, true, ProtoIPv6, 42, netip.MustParseAddr("2001:db8::1"), genevePacketV6[8:36], ipPayloadV6},
		{geneveNoOptions, 0, false, ProtoIPv4, MaxVNI, netip.Addr{}, []byte{}, ipPayloadV4},
	}
	for _, tt := range tests {
		h := Header(tt.pkt)
		if err := h.Check(); err != nil {
			t.Fatalf("Check(% x) = %v", tt.pkt, err)
		}
		got := []any{h.Version(), h.OptLen(), h.OAM(), h.Critical(), h.ProtocolType(), h.VNI(), h.NextHop(), h.Options(), h.Payload(), h.HeaderLength()}
		want := []any{uint8(0), tt.optLen, tt.oam, false, tt.proto, tt.vni, tt.nextHop, tt.options, tt.payloadWant, 8 + tt.optLen}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("accessors of % x (-want +got):\n%s", tt.pkt[:8], diff)
		}
	}
}

// TestGeneveReservedIgnored: reserved bits are ignored on receipt (RFC 8926
// §3.4, §3.5) and written as zero.
func TestGeneveReservedIgnored(t *testing.T) {
	pkt := slices.Clone(genevePacketV4)
	pkt[1] |= 0x3f  // the six reserved flag bits
	pkt[7] = 0xee   // the reserved byte after the VNI
	pkt[11] |= 0xe0 // the option's three R bits
	g, payload, err := Parse(pkt)
	if err != nil {
		t.Fatalf("Parse with reserved bits set: %v", err)
	}
	if got := g.Marshal(payload); !bytes.Equal(got, genevePacketV4) {
		t.Errorf("re-encoded =\n% x\nwant reserved bits cleared\n% x", got, genevePacketV4)
	}
}

func TestGeneveReject(t *testing.T) {
	v4 := func(edit func(b []byte) []byte) []byte { return edit(slices.Clone(genevePacketV4)) }
	tests := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"seven bytes", genevePacketV4[:7], ErrTruncated},
		{"version 1", v4(func(b []byte) []byte { b[0] |= 0x40; return b }), ErrVersion},
		{"version 3", v4(func(b []byte) []byte { b[0] |= 0xc0; return b }), ErrVersion},
		{"opt len beyond packet", genevePacketV4[:12], ErrOptLen},
		{"opt len 63, short packet", v4(func(b []byte) []byte { b[0] = 0x3f; return b }), ErrOptLen},
		{"option length beyond options", v4(func(b []byte) []byte { b[11] = 0x02; return b }), ErrOptLen},
		{"C bit", v4(func(b []byte) []byte { b[1] |= 0x40; return b }), ErrCritical},
		{"critical option, C bit clear", v4(func(b []byte) []byte { b[10] |= 0x80; return b }), ErrCritical},
		{"critical unknown option", slices.Concat(
			[]byte{0x01, 0x40, 0x08, 0x00, 0, 0, 1, 0},
			[]byte{0x01, 0x02, 0x83, 0x00}, // class 0x0102, type 0x83: critical, length 0
			ipPayloadV4), ErrCritical},
		{"Ethernet payload", v4(func(b []byte) []byte { b[2], b[3] = 0x65, 0x58; return b }), ErrProtocol},
		{"ARP payload", v4(func(b []byte) []byte { b[2], b[3] = 0x08, 0x06; return b }), ErrProtocol},
		{"next hop of 8 bytes", slices.Concat(
			[]byte{0x03, 0x00, 0x08, 0x00, 0, 0, 1, 0},
			[]byte{0xff, 0xf0, 0x01, 0x02, 10, 0, 1, 1, 10, 0, 1, 2},
			ipPayloadV4), ErrNextHop},
		{"next hop of 0 bytes", slices.Concat(
			[]byte{0x01, 0x00, 0x08, 0x00, 0, 0, 1, 0},
			[]byte{0xff, 0xf0, 0x01, 0x00},
			ipPayloadV4), ErrNextHop},
		{"two next hops", slices.Concat(
			[]byte{0x04, 0x00, 0x08, 0x00, 0, 0, 1, 0},
			[]byte{0xff, 0xf0, 0x01, 0x01, 10, 0, 1, 1},
			[]byte{0xff, 0xf0, 0x01, 0x01, 10, 0, 1, 2},
			ipPayloadV4), ErrNextHop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr := Header(tt.pkt).Check()
			_, _, parseErr := Parse(tt.pkt)
			if checkErr != tt.want || parseErr != tt.want {
				t.Errorf("Check() = %v, Parse error = %v, want %v", checkErr, parseErr, tt.want)
			}
			if !errors.Is(parseErr, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", parseErr)
			}
		})
	}
}

// TestGeneveCriticalEncode: Encode sets the C bit when an option is critical.
func TestGeneveCriticalEncode(t *testing.T) {
	g := Geneve{ProtocolType: ProtoIPv4, VNI: 1, Options: []Option{{Class: 0x0102, Type: 0x83}}}
	b := g.Marshal(ipPayloadV4)
	if want := []byte{0x01, 0x40, 0x08, 0x00, 0, 0, 1, 0, 0x01, 0x02, 0x83, 0x00}; !bytes.Equal(b[:12], want) {
		t.Errorf("header = % x, want % x", b[:12], want)
	}
}

func TestNextHopOption(t *testing.T) {
	for _, a := range []string{"10.0.1.1", "2001:db8::1"} {
		addr := netip.MustParseAddr(a)
		g := Geneve{ProtocolType: ProtoIPv4, Options: []Option{NextHopOption(addr)}}
		if got := g.NextHop(); got != addr {
			t.Errorf("NextHop() = %v, want %v", got, addr)
		}
		pkt := g.Marshal(ipPayloadV4)
		if err := Header(pkt).Check(); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if got := Header(pkt).NextHop(); got != addr {
			t.Errorf("Header.NextHop() = %v, want %v", got, addr)
		}
	}
	if got := (&Geneve{}).NextHop(); got.IsValid() {
		t.Errorf("NextHop() without the option = %v, want the zero Addr", got)
	}
}

func TestAppendPacket(t *testing.T) {
	ip4 := slices.Concat(ipPayloadV4)
	got, err := AppendPacket(nil, 0x123456, netip.MustParseAddr("10.0.1.1"), ip4)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, genevePacketV4) {
		t.Errorf("AppendPacket =\n% x\nwant\n% x", got, genevePacketV4)
	}
	if n := EncapLen(netip.MustParseAddr("10.0.1.1")); n != len(genevePacketV4)-len(ipPayloadV4) {
		t.Errorf("EncapLen(v4) = %d", n)
	}

	// IPv6 next hop and payload, after bytes already in the buffer.
	prefix := []byte{0xaa, 0xbb}
	nh6 := netip.MustParseAddr("2001:db8::1")
	got, err = AppendPacket(slices.Clone(prefix), 42, nh6, ipPayloadV6)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(prefix, []byte{
		0x05, 0x00, 0x86, 0xdd, 0x00, 0x00, 0x2a, 0x00,
		0xff, 0xf0, 0x01, 0x04,
	}, nh6.AsSlice(), ipPayloadV6)
	if !bytes.Equal(got, want) {
		t.Errorf("AppendPacket v6 =\n% x\nwant\n% x", got, want)
	}
	if n := EncapLen(nh6); n != 28 {
		t.Errorf("EncapLen(v6) = %d, want 28", n)
	}

	// No allocation when the buffer has room.
	buf := make([]byte, 0, 64)
	if a := testing.AllocsPerRun(100, func() {
		AppendPacket(buf[:0], 7, nh6, ipPayloadV4)
	}); a != 0 {
		t.Errorf("AppendPacket allocates %v times with room in dst", a)
	}

	for _, bad := range []struct {
		name string
		vni  uint32
		nh   netip.Addr
		ip   []byte
	}{
		{"VNI beyond 24 bits", MaxVNI + 1, nh6, ipPayloadV4},
		{"no next hop", 1, netip.Addr{}, ipPayloadV4},
		{"zoned next hop", 1, netip.MustParseAddr("fe80::1%eth0"), ipPayloadV4},
		{"empty payload", 1, nh6, nil},
		{"not IP", 1, nh6, []byte{0x50}},
	} {
		if b, err := AppendPacket(prefix, bad.vni, bad.nh, bad.ip); err == nil || !bytes.Equal(b, prefix) {
			t.Errorf("%s: AppendPacket = % x, %v; want an error and dst unchanged", bad.name, b, err)
		}
	}
}

// clearReserved returns b with the reserved bits of the header and of each
// option cleared, as Encode writes them. It walks the options itself rather
// than trusting the code under test, and expects b to have passed Check.
func clearReserved(b []byte) []byte {
	b = slices.Clone(b)
	b[1] &= 0xc0
	b[7] = 0
	opts := b[8 : 8+int(b[0]&0x3f)*4]
	for len(opts) > 0 {
		opts[3] &= 0x1f
		opts = opts[4+int(opts[3])*4:]
	}
	return b
}

func FuzzDecode(f *testing.F) {
	for _, tc := range geneveCases() {
		f.Add(tc.pkt)
	}
	f.Add([]byte{})
	f.Add(genevePacketV4[:12])
	f.Add([]byte{0x3f, 0x40, 0x86, 0xdd, 0, 0, 0, 0})
	f.Add(slices.Concat([]byte{0x02, 0x00, 0x08, 0x00, 0, 0, 1, 0}, []byte{0xff, 0xf0, 0x81, 0x01, 10, 0, 1, 1}))

	f.Fuzz(func(t *testing.T, b []byte) {
		orig := slices.Clone(b)
		h := Header(b)
		checkErr := h.Check()
		g, payload, err := Parse(b)
		if (checkErr == nil) != (err == nil) || checkErr != err {
			t.Fatalf("Check() = %v but Parse error = %v", checkErr, err)
		}
		if !bytes.Equal(b, orig) {
			t.Fatal("Parse modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// The view and the parsed form agree.
		if g.OAM != h.OAM() || g.ProtocolType != h.ProtocolType() || g.VNI != h.VNI() || g.NextHop() != h.NextHop() {
			t.Fatalf("parsed %+v, view OAM %v proto %#x VNI %d next hop %v", g, h.OAM(), h.ProtocolType(), h.VNI(), h.NextHop())
		}
		if g.Len() != h.HeaderLength() || !bytes.Equal(payload, h.Payload()) {
			t.Fatalf("parsed length %d, view %d", g.Len(), h.HeaderLength())
		}
		// A valid decode re-encodes identically, but for the reserved bits,
		// which RFC 8926 §3.4 has a receiver ignore and a sender zero.
		out := g.Marshal(payload)
		if want := clearReserved(orig); !bytes.Equal(out, want) {
			t.Fatalf("re-encoded\n% x\nwant\n% x", out, want)
		}
		g2, payload2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-encoded packet does not parse: %v", err)
		}
		if diff := cmp.Diff(g, g2); diff != "" || !bytes.Equal(payload, payload2) {
			t.Fatalf("parse(encode(parse(b))) differs (-first +second):\n%s", diff)
		}
	})
}
