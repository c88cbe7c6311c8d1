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

// FuzzParseTCP takes a segment and, in addrs, optionally the addresses of
// the pseudo-header: 32 bytes for IPv6, 8 for IPv4 (IPv4 literals
// otherwise). Nothing panics; Check and ParseTCP agree; the accessors read
// the fields where RFC 9293 §3.1 puts them; ChecksumValid agrees with an
// independent computation; and a parsed header encodes to one that parses
// back the same.
func FuzzParseTCP(f *testing.F) {
	for _, tc := range tcpCases() {
		var addrs []byte
		if tc.src.Is6() {
			s, d := tc.src.As16(), tc.dst.As16()
			addrs = slices.Concat(s[:], d[:])
		}
		f.Add(tc.seg, addrs)
	}
	f.Add([]byte{}, []byte{})
	f.Add(synV4[:19], []byte{})
	f.Add(synV4[:39], []byte{})                                                                     // options cut short
	f.Add(slices.Concat(rstV6[:12], []byte{0xf0}, rstV6[13:], make([]byte, 40)), []byte{})          // 60-byte header
	f.Add(slices.Concat(rstV6[:12], []byte{0x60, 0x10}, rstV6[14:], []byte{2, 0, 0, 0}), []byte{})  // option length 0
	f.Add(slices.Concat(rstV6[:12], []byte{0x60, 0x10}, rstV6[14:], []byte{5, 10, 0, 0}), []byte{}) // option longer than the list
	f.Add(slices.Concat(dataV4, []byte{0}), bytes.Repeat([]byte{0xff}, 32))                         // pseudo-header sum carries
	// MSS, timestamps and three SACK blocks packed into 40 bytes: more than
	// Encode's padded layout can hold.
	f.Add(slices.Concat(rstV6[:12], []byte{0xf0, 0x10}, rstV6[14:],
		[]byte{2, 4, 5, 0xb4, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 5, 26}, make([]byte, 24)), []byte{})

	f.Fuzz(func(t *testing.T, b, addrs []byte) {
		src, dst := hostA4, hostB4
		switch {
		case len(addrs) >= 32:
			src, dst = netip.AddrFrom16([16]byte(addrs[:16])), netip.AddrFrom16([16]byte(addrs[16:32]))
		case len(addrs) >= 8:
			src, dst = netip.AddrFrom4([4]byte(addrs[:4])), netip.AddrFrom4([4]byte(addrs[4:8]))
		}
		orig := slices.Clone(b)

		// The options parser alone takes any bytes.
		var anyOpts wire.TCPOptions
		wire.ParseTCPOptions(b, &anyOpts)

		v := wire.TCP(b)
		checkErr := v.Check()
		h, payload, err := wire.ParseTCP(b)
		checkParseErr(t, checkErr, err)
		if !bytes.Equal(b, orig) {
			t.Fatalf("ParseTCPOptions/Check/ParseTCP modified the input")
		}
		if err != nil {
			if len(b) >= wire.TCPMinHeaderLen {
				if off := int(b[12]>>4) * 4; off >= wire.TCPMinHeaderLen && off <= len(b) {
					t.Fatalf("data offset %d in %d bytes rejected: %v", off, len(b), err)
				}
			}
			return
		}

		// Every accessor reads its field.
		off := int(b[12]>>4) * 4
		if off < wire.TCPMinHeaderLen || off > len(b) {
			t.Fatalf("Check passed with data offset %d in %d bytes", off, len(b))
		}
		want := tcpView{
			SrcPort: binary.BigEndian.Uint16(b), DstPort: binary.BigEndian.Uint16(b[2:]),
			Seq: binary.BigEndian.Uint32(b[4:]), Ack: binary.BigEndian.Uint32(b[8:]),
			DataOffset: off, Flags: b[13], Window: binary.BigEndian.Uint16(b[14:]),
			Checksum: binary.BigEndian.Uint16(b[16:]), UrgentPointer: binary.BigEndian.Uint16(b[18:]),
		}
		// The byte slices are compared apart: cmp walks them byte by byte,
		// too slowly for the fuzzer's minimization of long inputs.
		got := tcpViewOf(v)
		if !bytes.Equal(got.Options, b[wire.TCPMinHeaderLen:off]) || !bytes.Equal(got.Payload, b[off:]) || !bytes.Equal(payload, b[off:]) {
			t.Fatalf("Options() %d bytes, Payload() %d, ParseTCP payload %d; data offset %d in %d bytes",
				len(got.Options), len(got.Payload), len(payload), off, len(b))
		}
		got.Options, got.Payload = nil, nil
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("view accessors mismatch (-want +got):\n%s", diff)
		}
		var opts wire.TCPOptions
		wire.ParseTCPOptions(v.Options(), &opts)
		wantHdr := wire.TCPHeader{
			SrcPort: want.SrcPort, DstPort: want.DstPort, Seq: want.Seq, Ack: want.Ack,
			Flags: want.Flags, Window: want.Window, Checksum: want.Checksum, Urgent: want.UrgentPointer,
			Options: opts,
		}
		if diff := cmp.Diff(wantHdr, h, cmpOpts...); diff != "" {
			t.Fatalf("ParseTCP() mismatch (-want +got):\n%s", diff)
		}
		if len(h.Options.SACK) > 4 {
			t.Fatalf("%d SACK blocks in at most 40 bytes of options", len(h.Options.SACK))
		}

		// The checksum, against the naive computation over the same
		// pseudo-header.
		valid := v.ChecksumValid(src, dst)
		if naive := naiveChecksum(slices.Concat(naivePseudoHeader(wire.ProtoTCP, src, dst, len(b)), b)) == 0; valid != naive {
			t.Fatalf("ChecksumValid(%v, %v) = %v, naive says %v", src, dst, valid, naive)
		}

		// Encode(Parse(b)) parses back to the same header, for every header
		// whose options fit Encode's layout (a sender may pack options
		// without the NOPs Encode adds; see the last seed).
		if h.Options.OptionsLen() > wire.TCPMaxHeaderLen-wire.TCPMinHeaderLen {
			return
		}
		hl := h.HeaderLen()
		out := make([]byte, hl+len(payload))
		h.Encode(out)
		copy(out[hl:], payload)
		wire.TCP(out).SetChecksum(src, dst)
		ov := wire.TCP(out)
		if err := ov.Check(); err != nil {
			t.Fatalf("Check() on Encode() output = %v: % x", err, out)
		}
		if ov.DataOffset() != hl {
			t.Fatalf("Encode() data offset %d, want %d", ov.DataOffset(), hl)
		}
		if !ov.ChecksumValid(src, dst) {
			t.Fatalf("Encode() output checksum invalid: % x", out)
		}
		var reOpts wire.TCPOptions
		if !wire.ParseTCPOptions(ov.Options(), &reOpts) {
			t.Fatalf("Encode() wrote malformed options: % x", ov.Options())
		}
		h2, payload2, err := wire.ParseTCP(out)
		if err != nil {
			t.Fatalf("ParseTCP(Encode()) = %v", err)
		}
		h.Checksum, h2.Checksum = 0, 0
		if diff := cmp.Diff(h, h2, cmpOpts...); diff != "" {
			t.Fatalf("ParseTCP(Encode(ParseTCP(b))) mismatch (-want +got):\n%s", diff)
		}
		if !bytes.Equal(payload2, payload) {
			t.Fatalf("payload changed in the round trip")
		}
	})
}
