package wire_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/stack/wire"
)

// TCP segments as they appear on the wire (without their IP headers). Every
// checksum was computed by an independent script (RFC 9293 §3.1
// pseudo-header for IPv4, RFC 8200 §8.1 for IPv6) and is re-verified below
// against naiveTCPChecksum, not wire's code.

// synV4 is a SYN from 10.0.1.2:54321 to 10.0.2.10:80 with the options in
// Linux's layout: MSS 1460, SACK-permitted and timestamps packed together,
// then NOP and window scale 7.
var synV4 = []byte{
	0xd4, 0x31, 0x00, 0x50, // src port 54321, dst port 80
	0x2b, 0x8f, 0x4d, 0x1e, // seq 0x2b8f4d1e
	0x00, 0x00, 0x00, 0x00, // ack 0
	0xa0, 0x02, 0xfa, 0xf0, // data offset 10 (40 bytes), SYN, window 64240
	0x45, 0xf9, 0x00, 0x00, // checksum 0x45f9, urgent 0
	0x02, 0x04, 0x05, 0xb4, // MSS 1460
	0x04, 0x02, // SACK permitted
	0x08, 0x0a, 0x00, 0x17, 0xa2, 0xc4, 0x00, 0x00, 0x00, 0x00, // TS val 0x0017a2c4 ecr 0
	0x01, 0x03, 0x03, 0x07, // NOP, window scale 7
}

// synAckV6 answers synV4 over IPv6, from [2001:db8:2::a]:80 to
// [2001:db8:1::2]:54321: MSS 1440 (an IPv6 header is 20 bytes longer).
var synAckV6 = []byte{
	0x00, 0x50, 0xd4, 0x31, // src port 80, dst port 54321
	0x7c, 0x1a, 0x9e, 0x03, // seq 0x7c1a9e03
	0x2b, 0x8f, 0x4d, 0x1f, // ack 0x2b8f4d1f
	0xa0, 0x12, 0xfe, 0x88, // data offset 10, SYN|ACK, window 65160
	0x47, 0xa3, 0x00, 0x00, // checksum 0x47a3, urgent 0
	0x02, 0x04, 0x05, 0xa0, // MSS 1440
	0x04, 0x02, // SACK permitted
	0x08, 0x0a, 0x9a, 0x3b, 0x01, 0xf2, 0x00, 0x17, 0xa2, 0xc4, // TS val 0x9a3b01f2 ecr 0x0017a2c4
	0x01, 0x03, 0x03, 0x07, // NOP, window scale 7
}

// sackAckV4 is an ACK from 10.0.2.10:80 to 10.0.1.2:54321 reporting two
// SACK blocks, laid out as Linux does: NOP NOP timestamps, NOP NOP SACK.
var sackAckV4 = []byte{
	0x00, 0x50, 0xd4, 0x31, // src port 80, dst port 54321
	0x7c, 0x1a, 0x9e, 0x04, // seq
	0x2b, 0x8f, 0x5a, 0x2f, // ack
	0xd0, 0x10, 0x01, 0xf5, // data offset 13 (52 bytes), ACK, window 501
	0xdd, 0x37, 0x00, 0x00, // checksum 0xdd37, urgent 0
	0x01, 0x01, 0x08, 0x0a, // NOP, NOP, TS
	0x9a, 0x3b, 0x02, 0x31, // TS val
	0x00, 0x17, 0xa3, 0x10, // TS ecr
	0x01, 0x01, 0x05, 0x12, // NOP, NOP, SACK with two blocks (18 bytes)
	0x2b, 0x8f, 0x65, 0x87, 0x2b, 0x8f, 0x70, 0xdf, // [0x2b8f6587, 0x2b8f70df)
	0x2b, 0x8f, 0x76, 0x37, 0x2b, 0x8f, 0x7b, 0x8f, // [0x2b8f7637, 0x2b8f7b8f)
}

// dataV4 carries 11 bytes (an odd count: the checksum pads the last byte)
// from 10.0.1.2:54321 to 10.0.2.10:80 with PSH|ACK and a timestamp.
var dataV4 = []byte{
	0xd4, 0x31, 0x00, 0x50, // src port 54321, dst port 80
	0x2b, 0x8f, 0x4d, 0x1f, // seq
	0x7c, 0x1a, 0x9e, 0x04, // ack
	0x80, 0x18, 0x01, 0xf6, // data offset 8 (32 bytes), PSH|ACK, window 502
	0xd0, 0x77, 0x00, 0x00, // checksum 0xd077, urgent 0
	0x01, 0x01, 0x08, 0x0a, // NOP, NOP, TS
	0x00, 0x17, 0xa2, 0xd0, // TS val
	0x9a, 0x3b, 0x01, 0xf2, // TS ecr
	'h', 'e', 'l', 'l', 'o', ',', ' ', 'l', 'a', 'b', '!',
}

// rstV6 is a bare RST|ACK from [2001:db8:1::2]:54321 to [2001:db8:2::a]:80.
var rstV6 = []byte{
	0xd4, 0x31, 0x00, 0x50,
	0x2b, 0x8f, 0x4d, 0x1f,
	0x7c, 0x1a, 0x9e, 0x04,
	0x50, 0x14, 0x00, 0x00, // data offset 5, RST|ACK, window 0
	0xed, 0x00, 0x00, 0x00, // checksum 0xed00, urgent 0
}

// naiveTCPChecksum is the checksum a sender computes for seg (its checksum
// field taken as zero), without wire.
func naiveTCPChecksum(seg []byte, src, dst netip.Addr) uint16 {
	return naiveChecksum(slices.Concat(naivePseudoHeader(wire.ProtoTCP, src, dst, len(seg)), withChecksumZero(seg, 16)))
}

// tcpView collects every accessor of a checked wire.TCP.
type tcpView struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	DataOffset       int
	Flags            uint8
	Window           uint16
	Checksum         uint16
	UrgentPointer    uint16
	Options          []byte
	Payload          []byte
}

func tcpViewOf(v wire.TCP) tcpView {
	return tcpView{
		SrcPort: v.SrcPort(), DstPort: v.DstPort(), Seq: v.Seq(), Ack: v.Ack(),
		DataOffset: v.DataOffset(), Flags: v.Flags(), Window: v.Window(),
		Checksum: v.Checksum(), UrgentPointer: v.UrgentPointer(),
		Options: v.Options(), Payload: v.Payload(),
	}
}

type tcpCase struct {
	name     string
	seg      []byte
	src, dst netip.Addr
	want     wire.TCPHeader
	payload  []byte
}

func tcpCases() []tcpCase {
	return []tcpCase{
		{
			name: "syn v4 linux options",
			seg:  synV4, src: hostA4, dst: hostB4,
			want: wire.TCPHeader{
				SrcPort: 54321, DstPort: 80, Seq: 0x2b8f4d1e, Flags: wire.TCPFlagSYN, Window: 64240, Checksum: 0x45f9,
				Options: wire.TCPOptions{
					MSS: 1460, SACKPermitted: true, TimestampsOK: true, TSVal: 0x0017a2c4,
					WindowScale: 7, WindowScaleOK: true,
				},
			},
		},
		{
			name: "syn-ack v6",
			seg:  synAckV6, src: hostB6, dst: hostA6,
			want: wire.TCPHeader{
				SrcPort: 80, DstPort: 54321, Seq: 0x7c1a9e03, Ack: 0x2b8f4d1f,
				Flags: wire.TCPFlagSYN | wire.TCPFlagACK, Window: 65160, Checksum: 0x47a3,
				Options: wire.TCPOptions{
					MSS: 1440, SACKPermitted: true, TimestampsOK: true, TSVal: 0x9a3b01f2, TSEcr: 0x0017a2c4,
					WindowScale: 7, WindowScaleOK: true,
				},
			},
		},
		{
			name: "ack with sack blocks v4",
			seg:  sackAckV4, src: hostB4, dst: hostA4,
			want: wire.TCPHeader{
				SrcPort: 80, DstPort: 54321, Seq: 0x7c1a9e04, Ack: 0x2b8f5a2f,
				Flags: wire.TCPFlagACK, Window: 501, Checksum: 0xdd37,
				Options: wire.TCPOptions{
					TimestampsOK: true, TSVal: 0x9a3b0231, TSEcr: 0x0017a310,
					SACK: []wire.SACKBlock{{0x2b8f6587, 0x2b8f70df}, {0x2b8f7637, 0x2b8f7b8f}},
				},
			},
		},
		{
			name: "data v4 odd length",
			seg:  dataV4, src: hostA4, dst: hostB4,
			want: wire.TCPHeader{
				SrcPort: 54321, DstPort: 80, Seq: 0x2b8f4d1f, Ack: 0x7c1a9e04,
				Flags: wire.TCPFlagPSH | wire.TCPFlagACK, Window: 502, Checksum: 0xd077,
				Options: wire.TCPOptions{TimestampsOK: true, TSVal: 0x0017a2d0, TSEcr: 0x9a3b01f2},
			},
			payload: []byte("hello, lab!"),
		},
		{
			name: "rst v6 no options",
			seg:  rstV6, src: hostA6, dst: hostB6,
			want: wire.TCPHeader{
				SrcPort: 54321, DstPort: 80, Seq: 0x2b8f4d1f, Ack: 0x7c1a9e04,
				Flags: wire.TCPFlagRST | wire.TCPFlagACK, Checksum: 0xed00,
			},
		},
	}
}

func TestTCPLiterals(t *testing.T) {
	for _, tc := range tcpCases() {
		t.Run(tc.name, func(t *testing.T) {
			// The literal is right by an independent computation.
			if got := naiveTCPChecksum(tc.seg, tc.src, tc.dst); got != tc.want.Checksum {
				t.Fatalf("literal checksum %#04x, naive computation %#04x", tc.want.Checksum, got)
			}

			// Decode: the view and the parsed form.
			v := wire.TCP(tc.seg)
			if err := v.Check(); err != nil {
				t.Fatalf("Check() = %v", err)
			}
			hl := tc.want.HeaderLen()
			wantView := tcpView{
				SrcPort: tc.want.SrcPort, DstPort: tc.want.DstPort, Seq: tc.want.Seq, Ack: tc.want.Ack,
				DataOffset: hl, Flags: tc.want.Flags, Window: tc.want.Window, Checksum: tc.want.Checksum,
				Options: tc.seg[wire.TCPMinHeaderLen:hl], Payload: tc.payload,
			}
			if diff := cmp.Diff(wantView, tcpViewOf(v), cmpOpts...); diff != "" {
				t.Errorf("view mismatch (-want +got):\n%s", diff)
			}
			if !v.ChecksumValid(tc.src, tc.dst) {
				t.Errorf("ChecksumValid(%v, %v) = false", tc.src, tc.dst)
			}
			h, payload, err := wire.ParseTCP(tc.seg)
			if err != nil {
				t.Fatalf("ParseTCP() = %v", err)
			}
			if diff := cmp.Diff(tc.want, h, cmpOpts...); diff != "" {
				t.Errorf("ParseTCP() mismatch (-want +got):\n%s", diff)
			}
			if !bytes.Equal(payload, tc.payload) {
				t.Errorf("payload %q, want %q", payload, tc.payload)
			}
			var o wire.TCPOptions
			if !wire.ParseTCPOptions(v.Options(), &o) {
				t.Errorf("ParseTCPOptions() = false")
			}

			// Encode gives back the literal, with a zero checksum until
			// SetChecksum computes it.
			b := make([]byte, hl+len(tc.payload))
			for i := range b {
				b[i] = 0xaa // Encode must write every header byte
			}
			h = tc.want
			h.Checksum = 0x1234 // ignored by Encode
			h.Encode(b)
			if b[16] != 0 || b[17] != 0 {
				t.Errorf("Encode() left checksum % x, want zero", b[16:18])
			}
			copy(b[hl:], tc.payload)
			wire.TCP(b).SetChecksum(tc.src, tc.dst)
			if diff := cmp.Diff(tc.seg, b); diff != "" {
				t.Errorf("Encode() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTCPChecksumPseudoHeader: the checksum covers the addresses and the
// length of the pseudo-header, of the right family.
func TestTCPChecksumPseudoHeader(t *testing.T) {
	other4, other6 := netip.MustParseAddr("10.0.2.11"), netip.MustParseAddr("2001:db8:2::b")
	for _, tc := range tcpCases() {
		v := wire.TCP(tc.seg)
		other := other4
		if tc.src.Is6() {
			other = other6
		}
		for _, c := range []struct {
			name     string
			src, dst netip.Addr
		}{
			{"other source", other, tc.dst},
			{"other destination", tc.src, other},
		} {
			if v.ChecksumValid(c.src, c.dst) {
				t.Errorf("%s: ChecksumValid with %s (%v -> %v) = true", tc.name, c.name, c.src, c.dst)
			}
		}
		// SetChecksum on a copy agrees with the naive computation.
		b := withChecksumZero(tc.seg, 16)
		wire.TCP(b).SetChecksum(tc.src, tc.dst)
		if got := binary.BigEndian.Uint16(b[16:]); got != naiveTCPChecksum(tc.seg, tc.src, tc.dst) {
			t.Errorf("%s: SetChecksum wrote %#04x, naive %#04x", tc.name, got, naiveTCPChecksum(tc.seg, tc.src, tc.dst))
		}
	}
}

func TestTCPChecksumDetectsBitFlips(t *testing.T) {
	for _, tc := range tcpCases() {
		for bit := range len(tc.seg) * 8 {
			b := slices.Clone(tc.seg)
			b[bit/8] ^= 1 << (bit % 8)
			if wire.TCP(b).ChecksumValid(tc.src, tc.dst) {
				t.Errorf("%s: bit %d flipped, checksum still valid", tc.name, bit)
			}
		}
	}
}

func TestTCPCheck(t *testing.T) {
	withOffset := func(b []byte, words byte) []byte {
		c := slices.Clone(b)
		c[12] = words<<4 | c[12]&0x0f
		return c
	}
	tests := []struct {
		name    string
		b       []byte
		wantErr error
	}{
		{"nil", nil, wire.ErrTruncated},
		{"19 bytes", synV4[:19], wire.ErrTruncated},
		{"data offset 0", withOffset(rstV6, 0), wire.ErrHeaderLen},
		{"data offset 4", withOffset(rstV6, 4), wire.ErrHeaderLen},
		{"options cut short", synV4[:39], wire.ErrHeaderLen},
		{"data offset 15 in 40 bytes", withOffset(synV4, 15), wire.ErrHeaderLen},
		{"data offset 5", rstV6, nil},
		{"data offset 15 in 60 bytes", withOffset(slices.Concat(synV4, make([]byte, 20)), 15), nil},
		{"reserved bits set", func() []byte { c := slices.Clone(rstV6); c[12] |= 0x0f; return c }(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := wire.TCP(tc.b).Check()
			_, _, perr := wire.ParseTCP(tc.b)
			checkParseErr(t, err, perr)
			if err != tc.wantErr {
				t.Fatalf("Check() = %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				v := wire.TCP(tc.b)
				if n := len(v.Options()) + wire.TCPMinHeaderLen; n != v.DataOffset() {
					t.Errorf("Options() is %d bytes, data offset %d", n-wire.TCPMinHeaderLen, v.DataOffset())
				}
			}
		})
	}
}

func TestParseTCPOptions(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want wire.TCPOptions
		ok   bool
	}{
		{name: "empty", ok: true},
		{name: "NOPs", b: []byte{1, 1, 1, 1}, ok: true},
		{name: "EOL ends the list", b: []byte{2, 4, 0x05, 0xb4, 0, 2, 4, 0x01, 0x00}, want: wire.TCPOptions{MSS: 1460}, ok: true},
		{name: "EOL then garbage", b: []byte{0, 0xff, 0x00}, ok: true},
		{name: "kind without length", b: []byte{1, 2}, ok: false},
		{name: "length 0", b: []byte{2, 0, 5, 0xb4}, ok: false},
		{name: "length 1", b: []byte{0xfe, 1, 0, 0}, ok: false},
		{name: "length beyond the list", b: []byte{2, 4, 5}, ok: false},
		{name: "timestamps cut short", b: []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0}, ok: false},
		{name: "parsed before a malformed one is kept", b: []byte{2, 4, 0x02, 0x18, 3, 3, 7, 8, 99}, want: wire.TCPOptions{MSS: 536, WindowScale: 7, WindowScaleOK: true}, ok: false},
		{name: "MSS of the wrong length is skipped", b: []byte{2, 3, 5, 3, 3, 2, 1, 1}, want: wire.TCPOptions{WindowScale: 2, WindowScaleOK: true}, ok: true},
		{name: "window scale of the wrong length is skipped", b: []byte{3, 4, 7, 7}, ok: true},
		{name: "window scale above 14 is reported as sent", b: []byte{1, 3, 3, 15}, want: wire.TCPOptions{WindowScale: 15, WindowScaleOK: true}, ok: true},
		{name: "window scale 0 is present", b: []byte{1, 3, 3, 0}, want: wire.TCPOptions{WindowScaleOK: true}, ok: true},
		{name: "SACK-permitted with a body is skipped", b: []byte{4, 3, 0, 1}, ok: true},
		{name: "timestamps of the wrong length are skipped", b: []byte{8, 8, 0, 0, 0, 1, 0, 0}, ok: true},
		{name: "SACK not a multiple of 8 is skipped", b: []byte{5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 9, 1}, ok: true},
		{name: "SACK without blocks", b: []byte{1, 1, 5, 2}, ok: true},
		{
			name: "four SACK blocks",
			b: []byte{1, 1, 5, 34,
				0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
				0, 0, 0, 5, 0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
			want: wire.TCPOptions{SACK: []wire.SACKBlock{{1, 2}, {3, 4}, {5, 6}, {0xffffffff, 0}}},
			ok:   true,
		},
		{name: "unknown option skipped", b: []byte{0xfe, 4, 0xf9, 0x89, 2, 4, 0x05, 0xb4}, want: wire.TCPOptions{MSS: 1460}, ok: true},
		{name: "the last of two wins", b: []byte{2, 4, 0x05, 0xb4, 2, 4, 0x02, 0x18}, want: wire.TCPOptions{MSS: 536}, ok: true},
		{name: "all 40 bytes", b: slices.Concat(synV4[20:], []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}), want: tcpCases()[0].want.Options, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := slices.Clone(tc.b)
			var got wire.TCPOptions
			if ok := wire.ParseTCPOptions(tc.b, &got); ok != tc.ok {
				t.Errorf("ParseTCPOptions() = %v, want %v", ok, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got, cmpOpts...); diff != "" {
				t.Errorf("options mismatch (-want +got):\n%s", diff)
			}
			if !bytes.Equal(tc.b, orig) {
				t.Errorf("ParseTCPOptions modified its input")
			}
		})
	}
}

// TestTCPOptionsLayout: Encode lays out each combination the stack sends
// as Linux does (NOP-padded to 4-byte words), and parsing gives it back.
func TestTCPOptionsLayout(t *testing.T) {
	ts := []byte{8, 10, 0, 0, 0, 1, 0, 0, 0, 2}
	blocks := func(n int) ([]wire.SACKBlock, []byte) {
		var bs []wire.SACKBlock
		var b []byte
		for i := range n {
			l, r := uint32(1000*i+1), uint32(1000*i+501)
			bs = append(bs, wire.SACKBlock{Left: l, Right: r})
			b = binary.BigEndian.AppendUint32(b, l)
			b = binary.BigEndian.AppendUint32(b, r)
		}
		return bs, b
	}
	sack3, sack3b := blocks(3)
	sack4, sack4b := blocks(4)
	tests := []struct {
		name string
		o    wire.TCPOptions
		want []byte
	}{
		{"none", wire.TCPOptions{}, nil},
		{"MSS", wire.TCPOptions{MSS: 536}, []byte{2, 4, 0x02, 0x18}},
		{"SACK-permitted alone", wire.TCPOptions{SACKPermitted: true}, []byte{1, 1, 4, 2}},
		{"timestamps alone", wire.TCPOptions{TimestampsOK: true, TSVal: 1, TSEcr: 2}, slices.Concat([]byte{1, 1}, ts)},
		{"window scale 0", wire.TCPOptions{WindowScaleOK: true}, []byte{1, 3, 3, 0}},
		{"SYN without timestamps", wire.TCPOptions{MSS: 1460, SACKPermitted: true, WindowScale: 7, WindowScaleOK: true},
			[]byte{2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7}},
		{"SYN with everything", tcpCases()[0].want.Options, synV4[20:]},
		{"three SACK blocks and timestamps (40 bytes)", wire.TCPOptions{TimestampsOK: true, TSVal: 1, TSEcr: 2, SACK: sack3},
			slices.Concat([]byte{1, 1}, ts, []byte{1, 1, 5, 26}, sack3b)},
		{"four SACK blocks (36 bytes)", wire.TCPOptions{SACK: sack4}, slices.Concat([]byte{1, 1, 5, 34}, sack4b)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := wire.TCPHeader{Options: tc.o}
			if n := tc.o.OptionsLen(); n != len(tc.want) || n%4 != 0 {
				t.Fatalf("OptionsLen() = %d, want %d", n, len(tc.want))
			}
			b := make([]byte, h.HeaderLen())
			h.Encode(b)
			if diff := cmp.Diff(tc.want, b[wire.TCPMinHeaderLen:], cmpOpts...); diff != "" {
				t.Errorf("options mismatch (-want +got):\n%s", diff)
			}
			if got := wire.TCP(b).DataOffset(); got != len(b) {
				t.Errorf("data offset %d, want %d", got, len(b))
			}
			var o wire.TCPOptions
			if !wire.ParseTCPOptions(b[wire.TCPMinHeaderLen:], &o) {
				t.Fatalf("ParseTCPOptions() = false")
			}
			if diff := cmp.Diff(tc.o, o, cmpOpts...); diff != "" {
				t.Errorf("reparsed options mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
