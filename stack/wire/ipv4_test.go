package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/stack/wire"
)

type ipv4Case struct {
	name    string
	pkt     []byte // as received, possibly with link padding
	padding int    // bytes after TotalLength
	hdr     wire.IPv4Header
	payload []byte
	// view-only facts
	df, mf, frag bool
}

func ipv4Cases() []ipv4Case {
	return []ipv4Case{
		{
			name:    "echo request",
			pkt:     echoRequestV4,
			padding: 2,
			hdr: wire.IPv4Header{
				TOS: 0, TotalLength: 44, ID: 0x1c46, Flags: wire.IPv4FlagDF, FragmentOffset: 0,
				TTL: 64, Protocol: wire.ProtoICMPv4, Checksum: 0x0780, Src: hostA4, Dst: hostB4,
			},
			payload: echoRequestV4[20:44],
			df:      true,
		},
		{
			name: "time exceeded",
			pkt:  timeExceededV4,
			hdr: wire.IPv4Header{
				TOS: 0xc0, TotalLength: 72, ID: 0xa1b2, TTL: 64, Protocol: wire.ProtoICMPv4,
				Checksum: 0xc240, Src: router4, Dst: hostA4,
			},
			payload: timeExceededV4[20:],
		},
		{
			name: "router alert option",
			pkt:  igmpReportV4,
			hdr: wire.IPv4Header{
				TOS: 0xc0, TotalLength: 32, ID: 0, Flags: wire.IPv4FlagDF, TTL: 1, Protocol: 2,
				Checksum: 0xf81a, Src: hostA4, Dst: mdns4,
				Options: []byte{0x94, 0x04, 0x00, 0x00},
			},
			payload: igmpReportV4[24:],
			df:      true,
		},
		{
			name: "record route option",
			pkt:  recordRouteV4,
			hdr: wire.IPv4Header{
				TotalLength: 36, ID: 1, TTL: 64, Protocol: wire.ProtoICMPv4,
				Checksum: 0x56c6, Src: hostA4, Dst: hostB4,
				Options: []byte{0x07, 0x07, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00},
			},
			payload: recordRouteV4[28:],
		},
		{
			name: "fragment",
			pkt:  fragmentV4,
			hdr: wire.IPv4Header{
				TotalLength: 28, ID: 0xabcd, Flags: wire.IPv4FlagMF, FragmentOffset: 185,
				TTL: 64, Protocol: wire.ProtoUDP, Checksum: 0x973f, Src: hostA4, Dst: hostB4,
			},
			payload: []byte{0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xba, 0xbe},
			mf:      true,
			frag:    true,
		},
	}
}

func TestIPv4Literals(t *testing.T) {
	for _, tc := range ipv4Cases() {
		t.Run(tc.name, func(t *testing.T) {
			hl := tc.hdr.HeaderLength()
			datagram := tc.pkt[:len(tc.pkt)-tc.padding]

			// The literal's checksum is right by an independent computation.
			if got := naiveChecksum(tc.pkt[:hl]); got != 0 {
				t.Fatalf("literal's header checksum is wrong: naive sum folds to %#04x, want 0", got)
			}
			if got, want := tc.hdr.Checksum, naiveChecksum(withChecksumZero(tc.pkt[:hl], 10)); got != want {
				t.Fatalf("table checksum %#04x, naive %#04x", got, want)
			}

			t.Run("decode", func(t *testing.T) {
				v := wire.IPv4(tc.pkt)
				if err := v.Check(); err != nil {
					t.Fatalf("Check() = %v", err)
				}
				want := ipv4View{
					Version:        4,
					HeaderLength:   hl,
					TOS:            tc.hdr.TOS,
					TotalLength:    tc.hdr.TotalLength,
					ID:             tc.hdr.ID,
					Flags:          tc.hdr.Flags,
					DontFragment:   tc.df,
					MoreFragments:  tc.mf,
					FragmentOffset: tc.hdr.FragmentOffset,
					IsFragment:     tc.frag,
					TTL:            tc.hdr.TTL,
					Protocol:       tc.hdr.Protocol,
					Checksum:       tc.hdr.Checksum,
					ChecksumValid:  true,
					Src:            tc.hdr.Src,
					Dst:            tc.hdr.Dst,
					Options:        tc.hdr.Options,
					Payload:        tc.payload,
				}
				if diff := cmp.Diff(want, ipv4ViewOf(v), cmpOpts...); diff != "" {
					t.Errorf("view accessors mismatch (-want +got):\n%s", diff)
				}

				h, payload, err := wire.ParseIPv4(tc.pkt)
				if err != nil {
					t.Fatalf("ParseIPv4() error = %v", err)
				}
				if diff := cmp.Diff(tc.hdr, h, cmpOpts...); diff != "" {
					t.Errorf("ParseIPv4() header mismatch (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.payload, payload); diff != "" {
					t.Errorf("ParseIPv4() payload mismatch (-want +got):\n%s", diff)
				}
				if len(payload) > 0 && &payload[0] != &tc.pkt[hl] {
					t.Errorf("ParseIPv4() payload does not alias the packet")
				}
			})

			t.Run("encode", func(t *testing.T) {
				h := tc.hdr
				h.Checksum = 0xdead // ignored: Encode computes it
				if diff := cmp.Diff(datagram, h.Marshal(tc.payload)); diff != "" {
					t.Errorf("Marshal() mismatch (-want +got):\n%s", diff)
				}

				h.TotalLength = 0 // derived from the payload
				if diff := cmp.Diff(datagram, h.Marshal(tc.payload)); diff != "" {
					t.Errorf("Marshal() with TotalLength 0 mismatch (-want +got):\n%s", diff)
				}

				// Encode overwrites every header byte of a dirty buffer and
				// nothing past the header.
				buf := bytes.Repeat([]byte{0xaa}, hl+4)
				h.Encode(buf, len(tc.payload))
				if diff := cmp.Diff(datagram[:hl], buf[:hl]); diff != "" {
					t.Errorf("Encode() mismatch (-want +got):\n%s", diff)
				}
				if !bytes.Equal(buf[hl:], []byte{0xaa, 0xaa, 0xaa, 0xaa}) {
					t.Errorf("Encode() wrote past the header: % x", buf[hl:])
				}
			})
		})
	}
}

// A router's time-exceeded quotes the datagram that expired; traceroute
// matches the reply to its probe by parsing the quote.
func TestIPv4TimeExceededQuote(t *testing.T) {
	_, payload, err := wire.ParseIPv4(timeExceededV4)
	if err != nil {
		t.Fatalf("ParseIPv4(outer) error = %v", err)
	}
	msg, err := wire.ParseICMP(payload)
	if err != nil {
		t.Fatalf("ParseICMP() error = %v", err)
	}
	if msg.Type != wire.ICMPv4TimeExceeded || msg.Code != wire.ICMPv4TTLExceeded {
		t.Fatalf("ICMP type/code = %d/%d, want %d/%d", msg.Type, msg.Code, wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded)
	}
	if !wire.ICMP(payload).ChecksumValidV4() {
		t.Errorf("ICMP checksum invalid")
	}

	inner, innerPayload, err := wire.ParseIPv4(msg.Body)
	if err != nil {
		t.Fatalf("ParseIPv4(quote) error = %v", err)
	}
	want := wire.IPv4Header{
		TotalLength: 44, ID: 0x1c46, Flags: wire.IPv4FlagDF, TTL: 1, Protocol: wire.ProtoICMPv4,
		Checksum: 0x4680, Src: hostA4, Dst: hostB4,
	}
	if diff := cmp.Diff(want, inner, cmpOpts...); diff != "" {
		t.Errorf("quoted header mismatch (-want +got):\n%s", diff)
	}
	if !wire.IPv4(msg.Body).ChecksumValid() {
		t.Errorf("quoted header checksum invalid")
	}
	probe, err := wire.ParseICMP(innerPayload)
	if err != nil {
		t.Fatalf("ParseICMP(quoted probe) error = %v", err)
	}
	if probe.Ident() != 0x1234 || probe.Seq() != 1 {
		t.Errorf("quoted probe ident/seq = %#x/%d, want 0x1234/1", probe.Ident(), probe.Seq())
	}

	// The quote is the original echo request with its TTL taken to 1 the
	// way a router takes it there.
	orig := slices.Clone(echoRequestV4[:44])
	wire.IPv4(orig).SetTTL(1)
	if diff := cmp.Diff(orig, msg.Body); diff != "" {
		t.Errorf("quote is not the original at TTL 1 (-want +got):\n%s", diff)
	}
}

func TestIPv4Check(t *testing.T) {
	// mod returns a copy of base changed by f.
	mod := func(base []byte, f func(b []byte)) []byte {
		b := slices.Clone(base)
		f(b)
		return b
	}
	setTL := func(tl uint16) func([]byte) {
		return func(b []byte) { binary.BigEndian.PutUint16(b[2:], tl) }
	}
	// A bare header, total length 20.
	bare := mod(echoRequestV4[:20], setTL(20))
	// IHL 15: 40 bytes of NOP options, total length 60.
	maxHeader := slices.Concat(mod(bare, func(b []byte) { b[0] = 0x4f; b[3] = 60 }), bytes.Repeat([]byte{1}, 40))

	tests := []struct {
		name    string
		b       []byte
		wantErr error // nil: valid
	}{
		{"nil", nil, wire.ErrTruncated},
		{"one byte", []byte{0x45}, wire.ErrTruncated},
		{"19 bytes", echoRequestV4[:19], wire.ErrTruncated},
		{"version 6", mod(echoRequestV4, func(b []byte) { b[0] = 0x65 }), wire.ErrVersion},
		{"version 0", mod(echoRequestV4, func(b []byte) { b[0] = 0x05 }), wire.ErrVersion},
		{"version 15", mod(echoRequestV4, func(b []byte) { b[0] = 0xf5 }), wire.ErrVersion},
		{"IPv6 packet", echoRequestV6, wire.ErrVersion},
		{"IHL 0", mod(echoRequestV4, func(b []byte) { b[0] = 0x40 }), wire.ErrHeaderLen},
		{"IHL 4", mod(echoRequestV4, func(b []byte) { b[0] = 0x44 }), wire.ErrHeaderLen},
		{"IHL 6 beyond 20-byte buffer", mod(bare, func(b []byte) { b[0] = 0x46 }), wire.ErrHeaderLen},
		{"IHL 15 beyond 46-byte buffer", mod(echoRequestV4, func(b []byte) { b[0] = 0x4f }), wire.ErrHeaderLen},
		{"IHL 15 beyond 59-byte buffer", maxHeader[:59], wire.ErrHeaderLen},
		{"total length 0", mod(echoRequestV4, setTL(0)), wire.ErrTotalLen},
		{"total length 19", mod(echoRequestV4, setTL(19)), wire.ErrTotalLen},
		{"total length below IHL", mod(igmpReportV4, setTL(20)), wire.ErrTotalLen},
		{"total length 23 below IHL 6", mod(igmpReportV4, setTL(23)), wire.ErrTotalLen},
		{"total length beyond buffer", echoRequestV4[:43], wire.ErrTotalLen},
		{"total length 47 beyond 46-byte frame", mod(echoRequestV4, setTL(47)), wire.ErrTotalLen},
		{"total length 65535", mod(echoRequestV4, setTL(65535)), wire.ErrTotalLen},

		{"valid echo with padding", echoRequestV4, nil},
		{"valid echo without padding", echoRequestV4[:44], nil},
		{"valid bare header", bare, nil},
		{"valid IHL 15", maxHeader, nil},
		{"valid total length 24 with IHL 6", mod(igmpReportV4, setTL(24)), nil},
		// Check leaves the checksum to ChecksumValid.
		{"valid with bad checksum", mod(echoRequestV4, func(b []byte) { b[11] ^= 1 }), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := wire.IPv4(tc.b).Check()
			h, payload, perr := wire.ParseIPv4(tc.b)
			if !errors.Is(perr, tc.wantErr) || (perr == nil) != (err == nil) {
				t.Errorf("ParseIPv4() error = %v, Check() = %v", perr, err)
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
			if diff := cmp.Diff(wire.IPv4Header{}, h, cmpOpts...); diff != "" || payload != nil {
				t.Errorf("ParseIPv4() on error returned header (-want +got):\n%s payload %x", diff, payload)
			}
		})
	}
}

func TestErrorsDistinct(t *testing.T) {
	errs := []error{wire.ErrTruncated, wire.ErrVersion, wire.ErrHeaderLen, wire.ErrTotalLen, wire.ErrChecksum}
	for i, a := range errs {
		if !errors.Is(a, wire.ErrMalformed) {
			t.Errorf("%v does not match ErrMalformed", a)
		}
		for j, b := range errs {
			if i != j && errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = true", a, b)
			}
		}
	}
	if errors.Is(wire.ErrMalformed, wire.ErrTruncated) {
		t.Errorf("ErrMalformed matches ErrTruncated")
	}
}

func TestIPv4PayloadExcludesPadding(t *testing.T) {
	for _, pad := range []int{0, 1, 2, 26, 1000} {
		b := slices.Concat(fragmentV4, bytes.Repeat([]byte{0xee}, pad))
		v := wire.IPv4(b)
		if err := v.Check(); err != nil {
			t.Fatalf("pad %d: Check() = %v", pad, err)
		}
		want := fragmentV4[20:]
		if diff := cmp.Diff(want, v.Payload()); diff != "" {
			t.Errorf("pad %d: Payload() mismatch (-want +got):\n%s", pad, diff)
		}
		_, payload, err := wire.ParseIPv4(b)
		if err != nil {
			t.Fatalf("pad %d: ParseIPv4() = %v", pad, err)
		}
		if diff := cmp.Diff(want, payload); diff != "" {
			t.Errorf("pad %d: ParseIPv4() payload mismatch (-want +got):\n%s", pad, diff)
		}
	}
}

func TestIPv4ChecksumDetectsBitFlips(t *testing.T) {
	// A one's complement sum catches every single-bit error. Byte 0 is left
	// alone: flipping IHL would change which bytes the checksum covers.
	for _, tc := range ipv4Cases() {
		hl := tc.hdr.HeaderLength()
		for i := 1; i < hl; i++ {
			for bit := range 8 {
				b := slices.Clone(tc.pkt)
				b[i] ^= 1 << bit
				if v := wire.IPv4(b); v.Check() == nil && v.ChecksumValid() {
					t.Errorf("%s: byte %d bit %d flipped, ChecksumValid() = true", tc.name, i, bit)
				}
			}
		}
	}
}

func TestIPv4SetChecksum(t *testing.T) {
	for _, tc := range ipv4Cases() {
		b := slices.Clone(tc.pkt)
		b[10], b[11] = 0x12, 0x34 // garbage to be overwritten
		v := wire.IPv4(b)
		v.SetChecksum()
		if got := v.Checksum(); got != tc.hdr.Checksum {
			t.Errorf("%s: SetChecksum() stored %#04x, want %#04x", tc.name, got, tc.hdr.Checksum)
		}
		if !bytes.Equal(b, tc.pkt) {
			t.Errorf("%s: SetChecksum() changed more than the checksum:\n% x\n% x", tc.name, b, tc.pkt)
		}
	}
}

// randIPv4 returns a random checked IPv4 packet with a valid header checksum:
// random IHL and options, random fields, a short random payload.
func randIPv4(r *rand.Rand) wire.IPv4 {
	hl := 4 * (5 + r.IntN(11))
	b := make([]byte, hl+r.IntN(32))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(b[2:], uint16(hl+r.IntN(len(b)-hl+1)))
	v := wire.IPv4(b)
	v.SetChecksum()
	return v
}

// checkSetTTL sets ttl on v and checks the result against a full
// recomputation.
func checkSetTTL(t *testing.T, v wire.IPv4, ttl uint8) {
	t.Helper()
	before := slices.Clone(v)
	v.SetTTL(ttl)
	if v.TTL() != ttl {
		t.Fatalf("SetTTL(%d): TTL() = %d", ttl, v.TTL())
	}
	want := slices.Clone(before)
	want[8] = ttl
	want[10], want[11] = 0, 0
	cs := naiveChecksum(want[:v.HeaderLength()])
	binary.BigEndian.PutUint16(want[10:], cs)
	if !bytes.Equal(v, want) {
		t.Fatalf("SetTTL(%d) on\n% x\ngot  % x\nwant % x (checksum %#04x, full recomputation %#04x)",
			ttl, before, v, want, v.Checksum(), cs)
	}
	if !v.ChecksumValid() {
		t.Fatalf("SetTTL(%d): ChecksumValid() = false on % x", ttl, v)
	}
}

func TestIPv4SetTTL(t *testing.T) {
	r := rand.New(rand.NewPCG(1624, 1812))
	for range 300 {
		v := randIPv4(r)
		if err := v.Check(); err != nil {
			t.Fatalf("randIPv4: Check() = %v", err)
		}
		for _, ttl := range r.Perm(256) {
			checkSetTTL(t, v, uint8(ttl))
		}
	}
}

func TestIPv4SetTTLDecrementChain(t *testing.T) {
	// A packet crossing 255 routers, each decrementing the TTL (RFC 1812
	// §5.3.1) and patching the checksum.
	for _, tc := range ipv4Cases() {
		b := slices.Clone(tc.pkt)
		v := wire.IPv4(b)
		v.SetTTL(255)
		for range 255 {
			checkSetTTL(t, v, v.TTL()-1)
		}
	}
}

// zeroChecksumID sets the ID of the header in b so that its checksum is
// 0x0000, and stores that checksum. With ID 0 the checksum is c = ~S for the
// sum S of the other words; the checksum is 0 when S+ID = -0, so ID = ~S = c.
func zeroChecksumID(t *testing.T, b []byte) wire.IPv4 {
	t.Helper()
	v := wire.IPv4(b)
	binary.BigEndian.PutUint16(b[4:], 0)
	v.SetChecksum()
	binary.BigEndian.PutUint16(b[4:], v.Checksum())
	v.SetChecksum()
	if v.Checksum() != 0 || naiveChecksum(b[:v.HeaderLength()]) != 0 {
		t.Fatalf("zeroChecksumID: checksum %#04x: % x", v.Checksum(), b[:v.HeaderLength()])
	}
	return v
}

// TestIPv4SetTTLZeroChecksum covers the case RFC 1624 §3 was written for:
// the incremental update must give 0x0000, as a full recomputation does,
// where the older RFC 1141 formula gave 0xffff.
func TestIPv4SetTTLZeroChecksum(t *testing.T) {
	found := 0
	for _, tc := range ipv4Cases() {
		for ttl := range 256 {
			b := slices.Clone(tc.pkt)
			b[8] = uint8(ttl)
			v := zeroChecksumID(t, b)
			found++
			// Arrive with a different TTL and go to ttl incrementally.
			v.SetTTL(uint8(ttl + 1))
			checkSetTTL(t, v, uint8(ttl))
			if v.Checksum() != 0 {
				t.Fatalf("%s: SetTTL(%d) checksum %#04x, want 0x0000", tc.name, ttl, v.Checksum())
			}
			// And away from 0x0000.
			checkSetTTL(t, v, uint8(ttl+7))
		}
	}
	if found == 0 {
		t.Fatal("no zero-checksum header tested")
	}
}

// TestIPv4NegativeZeroChecksum: a stored checksum of 0xffff is the other one's
// complement zero. It verifies, but no sender computes it (RFC 1624 §3: the
// computed checksum is never -0 for a header that is not all zero), so Encode
// writes 0x0000 for the same header.
func TestIPv4NegativeZeroChecksum(t *testing.T) {
	b := slices.Clone(echoRequestV4[:44])
	v := zeroChecksumID(t, b)
	b[10], b[11] = 0xff, 0xff
	if !v.ChecksumValid() {
		t.Fatalf("checksum 0xffff (-0) does not verify: % x", b[:20])
	}
	h, payload, err := wire.ParseIPv4(b)
	if err != nil {
		t.Fatalf("ParseIPv4() = %v", err)
	}
	out := h.Marshal(payload)
	if got := wire.IPv4(out).Checksum(); got != 0 {
		t.Errorf("Marshal() checksum = %#04x, want 0x0000", got)
	}
	// SetTTL keeps it verifying.
	v.SetTTL(3)
	if !v.ChecksumValid() {
		t.Errorf("after SetTTL, ChecksumValid() = false: % x", b[:20])
	}
}

func TestIPv4SetTTLKeepsBadChecksumBad(t *testing.T) {
	// A router patches the checksum; it must not repair a corrupt one.
	r := rand.New(rand.NewPCG(5, 6))
	for range 500 {
		v := randIPv4(r)
		v[10+r.IntN(2)] ^= byte(1 + r.IntN(255))
		if v.ChecksumValid() {
			continue
		}
		v.SetTTL(uint8(r.Uint32()))
		if v.ChecksumValid() {
			t.Fatalf("SetTTL repaired a bad checksum: % x", v)
		}
	}
}

func TestIPv4MarshalFragmentFields(t *testing.T) {
	// Flags and offset share a word; Encode keeps each in its bits.
	h := wire.IPv4Header{
		Flags: 0xffff, FragmentOffset: 0xffff, TTL: 1, Protocol: wire.ProtoUDP,
		Src: hostA4, Dst: hostB4,
	}
	v := wire.IPv4(h.Marshal(nil))
	if err := v.Check(); err != nil {
		t.Fatalf("Check() = %v", err)
	}
	if v.Flags() != 0xe000 || v.FragmentOffset() != 0x1fff || !v.DontFragment() || !v.MoreFragments() {
		t.Errorf("Flags() = %#04x, FragmentOffset() = %#04x, DF %v, MF %v", v.Flags(), v.FragmentOffset(), v.DontFragment(), v.MoreFragments())
	}
	h = wire.IPv4Header{FragmentOffset: 1, TTL: 1, Src: hostA4, Dst: hostB4}
	if v := wire.IPv4(h.Marshal(nil)); !v.IsFragment() || v.MoreFragments() || v.TotalLength() != 20 {
		t.Errorf("last fragment: IsFragment %v, MF %v, TotalLength %d", v.IsFragment(), v.MoreFragments(), v.TotalLength())
	}
}

func TestIPv4MarshalMaxOptions(t *testing.T) {
	opts := bytes.Repeat([]byte{1}, 40) // NOPs
	h := wire.IPv4Header{TTL: 9, Protocol: wire.ProtoTCP, Src: hostA4, Dst: netip.MustParseAddr("192.0.2.1"), Options: opts}
	b := h.Marshal([]byte{1, 2, 3})
	v := wire.IPv4(b)
	if err := v.Check(); err != nil {
		t.Fatalf("Check() = %v", err)
	}
	if v.HeaderLength() != 60 || v.TotalLength() != 63 || !v.ChecksumValid() {
		t.Errorf("HeaderLength %d, TotalLength %d, ChecksumValid %v", v.HeaderLength(), v.TotalLength(), v.ChecksumValid())
	}
	if diff := cmp.Diff(opts, v.Options()); diff != "" {
		t.Errorf("Options() mismatch (-want +got):\n%s", diff)
	}
}
