package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/stack/wire"
)

func TestIPv6Literal(t *testing.T) {
	wantHdr := wire.IPv6Header{
		TrafficClass:  0xb8,
		FlowLabel:     0x12345,
		PayloadLength: 16,
		NextHeader:    wire.ProtoICMPv6,
		HopLimit:      64,
		Src:           hostA6,
		Dst:           hostB6,
	}
	wantPayload := echoRequestV6[40:]

	t.Run("decode", func(t *testing.T) {
		for _, pad := range []int{0, 2, 14} {
			pkt := slices.Concat(echoRequestV6, make([]byte, pad))
			v := wire.IPv6(pkt)
			if err := v.Check(); err != nil {
				t.Fatalf("pad %d: Check() = %v", pad, err)
			}
			want := ipv6View{
				Version:       6,
				TrafficClass:  0xb8,
				FlowLabel:     0x12345,
				PayloadLength: 16,
				NextHeader:    wire.ProtoICMPv6,
				HopLimit:      64,
				Src:           hostA6,
				Dst:           hostB6,
				TotalLength:   56,
				Payload:       wantPayload,
			}
			if diff := cmp.Diff(want, ipv6ViewOf(v), cmpOpts...); diff != "" {
				t.Errorf("pad %d: view accessors mismatch (-want +got):\n%s", pad, diff)
			}
			h, payload, err := wire.ParseIPv6(pkt)
			if err != nil {
				t.Fatalf("pad %d: ParseIPv6() error = %v", pad, err)
			}
			if diff := cmp.Diff(wantHdr, h, cmpOpts...); diff != "" {
				t.Errorf("pad %d: ParseIPv6() header mismatch (-want +got):\n%s", pad, diff)
			}
			if diff := cmp.Diff(wantPayload, payload); diff != "" {
				t.Errorf("pad %d: ParseIPv6() payload mismatch (-want +got):\n%s", pad, diff)
			}
			if &payload[0] != &pkt[40] {
				t.Errorf("pad %d: payload does not alias the packet", pad)
			}
		}
	})

	t.Run("encode", func(t *testing.T) {
		h := wantHdr
		if diff := cmp.Diff(echoRequestV6, h.Marshal(wantPayload)); diff != "" {
			t.Errorf("Marshal() mismatch (-want +got):\n%s", diff)
		}
		h.PayloadLength = 0 // taken from the payload
		if diff := cmp.Diff(echoRequestV6, h.Marshal(wantPayload)); diff != "" {
			t.Errorf("Marshal() with PayloadLength 0 mismatch (-want +got):\n%s", diff)
		}
		buf := bytes.Repeat([]byte{0xaa}, 44)
		h.Encode(buf, len(wantPayload))
		if diff := cmp.Diff(echoRequestV6[:40], buf[:40]); diff != "" {
			t.Errorf("Encode() mismatch (-want +got):\n%s", diff)
		}
		if !bytes.Equal(buf[40:], []byte{0xaa, 0xaa, 0xaa, 0xaa}) {
			t.Errorf("Encode() wrote past the header: % x", buf[40:])
		}
	})

	t.Run("encode masks flow label", func(t *testing.T) {
		h := wantHdr
		h.FlowLabel = 0xfff12345 // only the low 20 bits are the flow label
		if diff := cmp.Diff(echoRequestV6, h.Marshal(wantPayload)); diff != "" {
			t.Errorf("Marshal() mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestIPv6TrafficClassFlowLabelBits(t *testing.T) {
	// Each of the 8 class bits and 20 label bits alone, so that a shift off
	// by one nibble shows.
	for bit := range 28 {
		h := wire.IPv6Header{NextHeader: wire.ProtoIPv6NoNext, HopLimit: 1, Src: hostA6, Dst: hostB6}
		if bit < 8 {
			h.TrafficClass = 1 << bit
		} else {
			h.FlowLabel = 1 << (bit - 8)
		}
		b := h.Marshal(nil)
		if got, want := binary.BigEndian.Uint32(b), uint32(6)<<28|uint32(h.TrafficClass)<<20|h.FlowLabel; got != want {
			t.Errorf("bit %d: first word %#08x, want %#08x", bit, got, want)
		}
		v := wire.IPv6(b)
		if err := v.Check(); err != nil {
			t.Fatalf("Check() = %v", err)
		}
		if v.Version() != 6 || v.TrafficClass() != h.TrafficClass || v.FlowLabel() != h.FlowLabel {
			t.Errorf("bit %d: version %d, class %#x, label %#x; want 6, %#x, %#x",
				bit, v.Version(), v.TrafficClass(), v.FlowLabel(), h.TrafficClass, h.FlowLabel)
		}
	}
}

func TestIPv6Check(t *testing.T) {
	mod := func(base []byte, f func(b []byte)) []byte {
		b := slices.Clone(base)
		f(b)
		return b
	}
	setPL := func(pl uint16) func([]byte) {
		return func(b []byte) { binary.BigEndian.PutUint16(b[4:], pl) }
	}
	// A bare header: payload length 0, no next header.
	bare := mod(echoRequestV6[:40], func(b []byte) {
		setPL(0)(b)
		b[6] = wire.ProtoIPv6NoNext
	})

	tests := []struct {
		name    string
		b       []byte
		wantErr error
	}{
		{"nil", nil, wire.ErrTruncated},
		{"one byte", []byte{0x60}, wire.ErrTruncated},
		{"39 bytes", echoRequestV6[:39], wire.ErrTruncated},
		{"20-byte IPv4 header", echoRequestV4[:20], wire.ErrTruncated},
		{"IPv4 packet", echoRequestV4, wire.ErrVersion},
		{"version 4", mod(echoRequestV6, func(b []byte) { b[0] = 0x4b }), wire.ErrVersion},
		{"version 0", mod(echoRequestV6, func(b []byte) { b[0] = 0x0b }), wire.ErrVersion},
		{"version 7", mod(echoRequestV6, func(b []byte) { b[0] = 0x7b }), wire.ErrVersion},
		{"payload length beyond buffer", echoRequestV6[:55], wire.ErrTotalLen},
		{"payload length 17", mod(echoRequestV6, setPL(17)), wire.ErrTotalLen},
		{"payload length 65535", mod(echoRequestV6, setPL(0xffff)), wire.ErrTotalLen},
		{"payload length 1 on bare header", mod(bare, setPL(1)), wire.ErrTotalLen},
		// RFC 2675 jumbogram: payload length 0 with a hop-by-hop header.
		// Check's documentation says it is reported as a bad length.
		{"jumbogram", mod(echoRequestV6, func(b []byte) {
			setPL(0)(b)
			b[6] = wire.ProtoHopByHop
		}), wire.ErrTotalLen},

		{"valid", echoRequestV6, nil},
		{"valid with padding", slices.Concat(echoRequestV6, make([]byte, 8)), nil},
		{"valid bare header", bare, nil},
		{"valid payload length 0 ICMPv6", mod(echoRequestV6, setPL(0)), nil},
		{"valid hop-by-hop with payload length", mod(echoRequestV6, func(b []byte) { b[6] = wire.ProtoHopByHop }), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := wire.IPv6(tc.b).Check()
			h, payload, perr := wire.ParseIPv6(tc.b)
			if !errors.Is(perr, tc.wantErr) || (perr == nil) != (err == nil) {
				t.Errorf("ParseIPv6() error = %v, Check() = %v", perr, err)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Check() = %v, want %v", err, tc.wantErr)
			}
			if !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("Check() = %v, does not wrap ErrMalformed", err)
			}
			if diff := cmp.Diff(wire.IPv6Header{}, h, cmpOpts...); diff != "" || payload != nil {
				t.Errorf("ParseIPv6() on error returned header (-want +got):\n%s payload %x", diff, payload)
			}
		})
	}
}

func TestIPv6PayloadExcludesPadding(t *testing.T) {
	for _, pad := range []int{0, 1, 6, 1000} {
		b := slices.Concat(echoRequestV6, bytes.Repeat([]byte{0xee}, pad))
		v := wire.IPv6(b)
		if err := v.Check(); err != nil {
			t.Fatalf("pad %d: Check() = %v", pad, err)
		}
		if diff := cmp.Diff(echoRequestV6[40:], v.Payload()); diff != "" {
			t.Errorf("pad %d: Payload() mismatch (-want +got):\n%s", pad, diff)
		}
		if v.TotalLength() != len(echoRequestV6) {
			t.Errorf("pad %d: TotalLength() = %d, want %d", pad, v.TotalLength(), len(echoRequestV6))
		}
	}
}

func TestIPv6SetHopLimit(t *testing.T) {
	b := slices.Clone(echoRequestV6)
	v := wire.IPv6(b)
	for hl := range 256 {
		v.SetHopLimit(uint8(hl))
		if v.HopLimit() != uint8(hl) {
			t.Fatalf("SetHopLimit(%d): HopLimit() = %d", hl, v.HopLimit())
		}
		want := slices.Clone(echoRequestV6)
		want[7] = uint8(hl)
		if !bytes.Equal(b, want) {
			t.Fatalf("SetHopLimit(%d) changed other bytes:\n% x\n% x", hl, b, want)
		}
	}
	// IPv6 has no header checksum: the ICMPv6 checksum does not cover the
	// hop limit, so it still verifies.
	if !wire.ICMP(v.Payload()).ChecksumValidV6(v.Src(), v.Dst()) {
		t.Errorf("ICMPv6 checksum invalid after SetHopLimit")
	}
}
