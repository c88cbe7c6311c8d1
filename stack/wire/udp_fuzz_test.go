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

// FuzzParseUDP takes a datagram and, in addrs, optionally the addresses of
// the pseudo-header: 32 bytes for IPv6, 8 for IPv4 (IPv4 literals otherwise).
func FuzzParseUDP(f *testing.F) {
	for _, tc := range udpCases() {
		var addrs []byte
		if tc.src.Is6() {
			s, d := tc.src.As16(), tc.dst.As16()
			addrs = slices.Concat(s[:], d[:])
		}
		f.Add(tc.msg, addrs)
	}
	f.Add([]byte{}, []byte{})
	f.Add(echoV6[:7], []byte{})
	f.Add(slices.Concat(dnsQueryV4[20:], []byte{1, 2, 3}), []byte{})      // bytes past Length
	f.Add(echoV6, bytes.Repeat([]byte{0xff}, 32))                         // pseudo-header sum carries
	f.Add(noChecksumV4, []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})       // no checksum, v4
	f.Add(noChecksumV4, bytes.Repeat([]byte{0x20, 0x01, 0x0d, 0xb8}, 8))  // no checksum, v6
	f.Add([]byte{0, 0, 0, 0, 0, 8, 0, 0}, []byte{0, 0, 0, 0, 0, 0, 0, 0}) // all zero

	f.Fuzz(func(t *testing.T, b, addrs []byte) {
		src, dst := hostA4, hostB4
		switch {
		case len(addrs) >= 32:
			src, dst = netip.AddrFrom16([16]byte(addrs[:16])), netip.AddrFrom16([16]byte(addrs[16:32]))
		case len(addrs) >= 8:
			src, dst = netip.AddrFrom4([4]byte(addrs[:4])), netip.AddrFrom4([4]byte(addrs[4:8]))
		}

		orig := slices.Clone(b)
		v := wire.UDP(b)
		checkErr := v.Check()
		h, payload, err := wire.ParseUDP(b)
		checkParseErr(t, checkErr, err)
		if !bytes.Equal(b, orig) {
			t.Fatalf("Check/ParseUDP modified the input")
		}
		if err != nil {
			if len(b) >= 8 {
				if l := int(binary.BigEndian.Uint16(b[4:])); l >= 8 && l <= len(b) {
					t.Fatalf("Length %d in %d bytes rejected: %v", l, len(b), err)
				}
			}
			return
		}

		// Every accessor is safe and within bounds.
		n := int(binary.BigEndian.Uint16(b[4:]))
		if n < 8 || n > len(b) {
			t.Fatalf("Check passed with Length %d in %d bytes", n, len(b))
		}
		msg := b[:n]
		gotView := udpViewOf(v)
		if !bytes.Equal(gotView.Payload, msg[8:]) || !bytes.Equal(payload, msg[8:]) {
			t.Fatalf("Payload() is %d bytes, parsed %d, want %d", len(gotView.Payload), len(payload), n-8)
		}
		want := udpView{
			SrcPort: binary.BigEndian.Uint16(b), DstPort: binary.BigEndian.Uint16(b[2:]),
			Length: n, Checksum: binary.BigEndian.Uint16(b[6:]),
		}
		gotView.Payload = nil
		if diff := cmp.Diff(want, gotView); diff != "" {
			t.Fatalf("view accessors mismatch (-want +got):\n%s", diff)
		}
		wantHdr := wire.UDPHeader{SrcPort: want.SrcPort, DstPort: want.DstPort, Length: n, Checksum: want.Checksum}
		if diff := cmp.Diff(wantHdr, h); diff != "" {
			t.Fatalf("ParseUDP() mismatch (-want +got):\n%s", diff)
		}

		valid := v.ChecksumValid(src, dst)
		if valid != naiveUDPValid(msg, src, dst) {
			t.Fatalf("ChecksumValid(%v, %v) = %v, naive disagrees", src, dst, valid)
		}

		// Marshal gives back the datagram, up to the checksum, which is
		// the independently computed one, never zero, and the one that was
		// there whenever a real one verified (RFC 768 leaves no second
		// encoding: a computed zero always goes out as 0xffff).
		out := h.Marshal(payload, src, dst)
		if !bytes.Equal(out[:6], msg[:6]) || !bytes.Equal(out[8:], msg[8:]) {
			t.Fatalf("Marshal() changed more than the checksum:\n in  % x\n out % x", msg, out)
		}
		cs := binary.BigEndian.Uint16(out[6:])
		if wantCS := naiveUDPChecksum(msg, src, dst); cs != wantCS || cs == 0 {
			t.Fatalf("Marshal() checksum %#04x, naive %#04x", cs, wantCS)
		}
		if valid && want.Checksum != 0 && cs != want.Checksum {
			t.Fatalf("checksum %#04x verified, but re-encoding gives %#04x", want.Checksum, cs)
		}
		ov := wire.UDP(out)
		if err := ov.Check(); err != nil {
			t.Fatalf("Check() on Marshal() output = %v", err)
		}
		if !ov.ChecksumValid(src, dst) {
			t.Fatalf("Marshal() output checksum invalid: % x", out)
		}
	})
}
