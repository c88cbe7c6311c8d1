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

// checkParseErr fails unless a view's Check and the matching Parse agree and
// the error counts as malformed.
func checkParseErr(t *testing.T, checkErr, parseErr error) {
	t.Helper()
	if (checkErr == nil) != (parseErr == nil) || !errors.Is(parseErr, checkErr) {
		t.Fatalf("Check() = %v but Parse error = %v", checkErr, parseErr)
	}
	if parseErr != nil && !errors.Is(parseErr, wire.ErrMalformed) {
		t.Fatalf("error %v does not wrap ErrMalformed", parseErr)
	}
}

// checkRoundTripChecksum checks the checksum an encoder wrote (got) against
// an independent computation (want) and against the one that was parsed
// (stored). If the input verified, the re-encoded checksum equals it, except
// for a stored 0xffff: that is -0, which verifies just as +0 does but which no
// sender computes for a non-zero sum (RFC 1624 §3), so it comes back as 0.
func checkRoundTripChecksum(t *testing.T, got, want, stored uint16, inputValid bool) {
	t.Helper()
	if got != want {
		t.Fatalf("encoded checksum %#04x, independent computation %#04x", got, want)
	}
	if inputValid && got != stored && !(stored == 0xffff && got == 0) {
		t.Fatalf("input checksum %#04x verified, but re-encoding gives %#04x", stored, got)
	}
}

func FuzzParseIPv4(f *testing.F) {
	for _, tc := range ipv4Cases() {
		f.Add(tc.pkt)
	}
	f.Add([]byte{})
	f.Add(echoRequestV4[:19])
	f.Add(echoRequestV4[:20])
	f.Add(fragNeededV4[8:])    // a quote: total length beyond the buffer
	f.Add(timeExceededV4[28:]) // a full quote
	f.Add(echoRequestV6)
	maxHeader := slices.Concat([]byte{0x4f, 0, 0, 60}, make([]byte, 56))
	f.Add(maxHeader)

	f.Fuzz(func(t *testing.T, b []byte) {
		orig := slices.Clone(b)
		v := wire.IPv4(b)
		checkErr := v.Check()
		h, payload, err := wire.ParseIPv4(b)
		checkParseErr(t, checkErr, err)
		if !bytes.Equal(b, orig) {
			t.Fatalf("Check/ParseIPv4 modified the input")
		}
		if err != nil {
			return
		}

		// Every accessor is safe and within bounds.
		got := ipv4ViewOf(v)
		hl, tl := got.HeaderLength, got.TotalLength
		if got.Version != 4 || hl < 20 || hl > 60 || hl%4 != 0 || tl < hl || tl > len(b) {
			t.Fatalf("Check passed but version %d, header length %d, total length %d, buffer %d",
				got.Version, hl, tl, len(b))
		}
		if len(payload) != tl-hl || !bytes.Equal(payload, b[hl:tl]) {
			t.Fatalf("payload is %d bytes, want TotalLength-HeaderLength = %d", len(payload), tl-hl)
		}
		if len(got.Options) != hl-20 || !bytes.Equal(got.Options, b[20:hl]) {
			t.Fatalf("Options() is %d bytes, want %d", len(got.Options), hl-20)
		}
		if got.ChecksumValid != (naiveChecksum(b[:hl]) == 0) {
			t.Fatalf("ChecksumValid() = %v, naive sum disagrees", got.ChecksumValid)
		}
		if got.IsFragment != (got.MoreFragments || got.FragmentOffset != 0) {
			t.Fatalf("IsFragment() = %v with MF %v offset %d", got.IsFragment, got.MoreFragments, got.FragmentOffset)
		}

		// The parsed form says what the view says.
		want := wire.IPv4Header{
			TOS: got.TOS, TotalLength: tl, ID: got.ID, Flags: got.Flags,
			FragmentOffset: got.FragmentOffset, TTL: got.TTL, Protocol: got.Protocol,
			Checksum: got.Checksum, Src: got.Src, Dst: got.Dst, Options: got.Options,
		}
		if diff := cmp.Diff(want, h, cmpOpts...); diff != "" {
			t.Fatalf("ParseIPv4() disagrees with the view (-want +got):\n%s", diff)
		}
		if h.HeaderLength() != hl {
			t.Fatalf("IPv4Header.HeaderLength() = %d, want %d", h.HeaderLength(), hl)
		}

		// Marshal gives back the datagram, up to the checksum.
		out := h.Marshal(payload)
		if len(out) != tl {
			t.Fatalf("Marshal() is %d bytes, want %d", len(out), tl)
		}
		if !bytes.Equal(out[:10], b[:10]) || !bytes.Equal(out[12:], b[12:tl]) {
			t.Fatalf("Marshal() changed more than the checksum:\n in  % x\n out % x", b[:tl], out)
		}
		ov := wire.IPv4(out)
		checkRoundTripChecksum(t, ov.Checksum(), naiveChecksum(withChecksumZero(b[:hl], 10)), got.Checksum, got.ChecksumValid)
		if got.ChecksumValid && got.Checksum != 0xffff && !bytes.Equal(out[:hl], b[:hl]) {
			t.Fatalf("valid header does not round-trip:\n in  % x\n out % x", b[:hl], out[:hl])
		}

		// ... which parses back to the same header, now with a good checksum.
		if err := ov.Check(); err != nil {
			t.Fatalf("Check() on Marshal() output = %v", err)
		}
		if !ov.ChecksumValid() {
			t.Fatalf("Marshal() output checksum invalid: % x", out[:hl])
		}
		h2, payload2, err := wire.ParseIPv4(out)
		if err != nil {
			t.Fatalf("ParseIPv4(Marshal()) = %v", err)
		}
		want.Checksum = ov.Checksum()
		if diff := cmp.Diff(want, h2, cmpOpts...); diff != "" {
			t.Fatalf("ParseIPv4(Marshal()) mismatch (-want +got):\n%s", diff)
		}
		if !bytes.Equal(payload2, payload) {
			t.Fatalf("ParseIPv4(Marshal()) payload mismatch")
		}

		// Encode into a buffer of exactly HeaderLength writes the same.
		hb := make([]byte, hl)
		h.Encode(hb, len(payload))
		if !bytes.Equal(hb, out[:hl]) {
			t.Fatalf("Encode() = % x, Marshal() header % x", hb, out[:hl])
		}

		// SetTTL keeps a good checksum good and a bad one bad.
		for _, ttl := range []uint8{got.TTL - 1, got.TTL + 1, 0, 255} {
			c := wire.IPv4(slices.Clone(b))
			c.SetTTL(ttl)
			if c.TTL() != ttl || c.ChecksumValid() != got.ChecksumValid {
				t.Fatalf("SetTTL(%d): TTL %d, ChecksumValid %v, was %v", ttl, c.TTL(), c.ChecksumValid(), got.ChecksumValid)
			}
			if !bytes.Equal(c[:8], b[:8]) || !bytes.Equal(c[9:10], b[9:10]) || !bytes.Equal(c[12:], b[12:]) {
				t.Fatalf("SetTTL(%d) changed other fields", ttl)
			}
		}
	})
}

func FuzzParseIPv6(f *testing.F) {
	f.Add(echoRequestV6)
	f.Add(slices.Concat(echoRequestV6, []byte{0, 0}))
	f.Add(echoRequestV6[:39])
	f.Add(echoRequestV6[:55])
	f.Add(packetTooBigV6[8:]) // a quote: payload length beyond the buffer
	f.Add(echoRequestV4)
	f.Add([]byte{})
	jumbo := slices.Clone(echoRequestV6)
	jumbo[4], jumbo[5], jumbo[6] = 0, 0, wire.ProtoHopByHop
	f.Add(jumbo)

	f.Fuzz(func(t *testing.T, b []byte) {
		orig := slices.Clone(b)
		v := wire.IPv6(b)
		checkErr := v.Check()
		h, payload, err := wire.ParseIPv6(b)
		checkParseErr(t, checkErr, err)
		if !bytes.Equal(b, orig) {
			t.Fatalf("Check/ParseIPv6 modified the input")
		}
		if err != nil {
			return
		}

		got := ipv6ViewOf(v)
		if got.Version != 6 || got.TotalLength != 40+got.PayloadLength || got.TotalLength > len(b) {
			t.Fatalf("Check passed but version %d, payload length %d, buffer %d", got.Version, got.PayloadLength, len(b))
		}
		if got.PayloadLength == 0 && got.NextHeader == wire.ProtoHopByHop {
			t.Fatalf("Check passed a jumbogram")
		}
		if len(payload) != got.PayloadLength || !bytes.Equal(payload, b[40:got.TotalLength]) {
			t.Fatalf("payload is %d bytes, want PayloadLength %d", len(payload), got.PayloadLength)
		}
		if got.FlowLabel > 0xfffff {
			t.Fatalf("FlowLabel() = %#x has more than 20 bits", got.FlowLabel)
		}
		if w := binary.BigEndian.Uint32(b); w != 6<<28|uint32(got.TrafficClass)<<20|got.FlowLabel {
			t.Fatalf("first word %#08x, but class %#x label %#x", w, got.TrafficClass, got.FlowLabel)
		}

		want := wire.IPv6Header{
			TrafficClass: got.TrafficClass, FlowLabel: got.FlowLabel, PayloadLength: got.PayloadLength,
			NextHeader: got.NextHeader, HopLimit: got.HopLimit, Src: got.Src, Dst: got.Dst,
		}
		if diff := cmp.Diff(want, h, cmpOpts...); diff != "" {
			t.Fatalf("ParseIPv6() disagrees with the view (-want +got):\n%s", diff)
		}

		// Marshal gives back exactly the datagram (there is no checksum).
		out := h.Marshal(payload)
		if !bytes.Equal(out, b[:got.TotalLength]) {
			t.Fatalf("Marshal() does not round-trip:\n in  % x\n out % x", b[:got.TotalLength], out)
		}
		hb := make([]byte, 40)
		h.Encode(hb, len(payload))
		if !bytes.Equal(hb, b[:40]) {
			t.Fatalf("Encode() does not round-trip:\n in  % x\n out % x", b[:40], hb)
		}
		h2, payload2, err := wire.ParseIPv6(out)
		if err != nil {
			t.Fatalf("ParseIPv6(Marshal()) = %v", err)
		}
		if diff := cmp.Diff(h, h2, cmpOpts...); diff != "" || !bytes.Equal(payload2, payload) {
			t.Fatalf("ParseIPv6(Marshal()) mismatch (-want +got):\n%s", diff)
		}

		c := wire.IPv6(slices.Clone(b))
		c.SetHopLimit(got.HopLimit - 1)
		if c.HopLimit() != got.HopLimit-1 || !bytes.Equal(c[:7], b[:7]) || !bytes.Equal(c[8:], b[8:]) {
			t.Fatalf("SetHopLimit changed other bytes")
		}
	})
}

// FuzzParseICMP takes a message and, in addrs, optionally the addresses of the
// pseudo-header: 32 bytes for IPv6, 8 for IPv4.
func FuzzParseICMP(f *testing.F) {
	for _, tc := range icmpCases() {
		var addrs []byte
		if tc.v6 {
			s, d := tc.src.As16(), tc.dst.As16()
			addrs = slices.Concat(s[:], d[:])
		}
		f.Add(tc.msg, addrs)
	}
	f.Add([]byte{}, []byte{})
	f.Add(echoRequestV4[20:27], []byte{})
	f.Add([]byte{0, 0, 0xff, 0xff, 0, 0, 0, 0}, []byte{})
	f.Add(echoRequestV6[40:], bytes.Repeat([]byte{0xff}, 32)) // pseudo-header sum carries
	f.Add(echoRequestV4[20:44], []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})

	f.Fuzz(func(t *testing.T, b, addrs []byte) {
		src, dst := hostA6, hostB6
		switch {
		case len(addrs) >= 32:
			src, dst = netip.AddrFrom16([16]byte(addrs[:16])), netip.AddrFrom16([16]byte(addrs[16:32]))
		case len(addrs) >= 8:
			src, dst = netip.AddrFrom4([4]byte(addrs[:4])), netip.AddrFrom4([4]byte(addrs[4:8]))
		}

		orig := slices.Clone(b)
		v := wire.ICMP(b)
		checkErr := v.Check()
		m, err := wire.ParseICMP(b)
		checkParseErr(t, checkErr, err)
		if (err == nil) != (len(b) >= 8) {
			t.Fatalf("%d bytes: Check() = %v", len(b), err)
		}
		if !bytes.Equal(b, orig) {
			t.Fatalf("Check/ParseICMP modified the input")
		}
		if err != nil {
			return
		}

		rest := binary.BigEndian.Uint32(b[4:])
		want := icmpView{
			Type: b[0], Code: b[1], Checksum: binary.BigEndian.Uint16(b[2:]), Rest: rest,
			Ident: uint16(rest >> 16), Seq: uint16(rest), MTUv4: rest & 0xffff, MTUv6: rest, Body: b[8:],
		}
		// Bodies are compared with bytes.Equal: cmp walks a []byte by
		// reflection, some 80ms for 64 KiB, which stalls the fuzzer.
		gotView := icmpViewOf(v)
		if !bytes.Equal(gotView.Body, b[8:]) || !bytes.Equal(m.Body, b[8:]) {
			t.Fatalf("Body() is %d bytes, parsed Body %d, want %d", len(gotView.Body), len(m.Body), len(b)-8)
		}
		want.Body, gotView.Body = nil, nil
		if diff := cmp.Diff(want, gotView); diff != "" {
			t.Fatalf("view accessors mismatch (-want +got):\n%s", diff)
		}
		wantMsg := wire.ICMPMessage{Type: want.Type, Code: want.Code, Checksum: want.Checksum, Rest: rest}
		gotMsg := m
		gotMsg.Body = nil
		if diff := cmp.Diff(wantMsg, gotMsg); diff != "" {
			t.Fatalf("ParseICMP() mismatch (-want +got):\n%s", diff)
		}
		if m.Ident() != want.Ident || m.Seq() != want.Seq || m.Len() != len(b) {
			t.Fatalf("Ident/Seq/Len = %#x/%d/%d", m.Ident(), m.Seq(), m.Len())
		}

		validV4 := v.ChecksumValidV4()
		if validV4 != (naiveChecksum(b) == 0) {
			t.Fatalf("ChecksumValidV4() = %v, naive sum disagrees", validV4)
		}
		validV6 := v.ChecksumValidV6(src, dst)
		if validV6 != (naiveChecksumV6(b, src, dst) == 0) {
			t.Fatalf("ChecksumValidV6(%v, %v) = %v, naive sum disagrees", src, dst, validV6)
		}

		for _, v6 := range []bool{false, true} {
			out := make([]byte, m.Len())
			var wantCS uint16
			valid := validV4
			if v6 {
				m.EncodeV6(out, src, dst)
				wantCS = naiveChecksumV6(withChecksumZero(b, 2), src, dst)
				valid = validV6
			} else {
				m.EncodeV4(out)
				wantCS = naiveChecksum(withChecksumZero(b, 2))
			}
			if !bytes.Equal(out[:2], b[:2]) || !bytes.Equal(out[4:], b[4:]) {
				t.Fatalf("v6=%v: encoding changed more than the checksum:\n in  % x\n out % x", v6, b, out)
			}
			ov := wire.ICMP(out)
			checkRoundTripChecksum(t, ov.Checksum(), wantCS, want.Checksum, valid)
			if valid && want.Checksum != 0xffff && !bytes.Equal(out, b) {
				t.Fatalf("v6=%v: valid message does not round-trip:\n in  % x\n out % x", v6, b, out)
			}
			if v6 && !ov.ChecksumValidV6(src, dst) || !v6 && !ov.ChecksumValidV4() {
				t.Fatalf("v6=%v: encoded checksum does not verify: % x", v6, out)
			}
		}
	})
}

func FuzzSum(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint32(0))
	f.Add(bytes.Repeat([]byte{0xff}, 9), uint32(0xffffffff))
	f.Add([]byte{}, uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, initial uint32) {
		if got, want := wire.Checksum(b), naiveChecksum(b); got != want {
			t.Fatalf("Checksum() = %#04x, naive %#04x", got, want)
		}
		if got, want := wire.Fold(wire.Sum(b, initial)), naiveFold(naiveSum(b)+uint64(initial)); got != want {
			t.Fatalf("Fold(Sum(b, %#x)) = %#04x, naive %#04x", initial, got, want)
		}
	})
}
