package socks5

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rw is a client's bytes to read and what the server wrote.
type rw struct {
	*bytes.Reader
	out bytes.Buffer
}

func (c *rw) Write(b []byte) (int, error) { return c.out.Write(b) }

func TestHandshake(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    []byte
		want  Request
		err   error
		reply []byte
	}{
		{"connect IPv4", []byte{5, 1, 0, 5, 1, 0, 1, 10, 0, 2, 10, 0, 80},
			Request{CmdConnect, Addr{IP: netip.MustParseAddr("10.0.2.10"), Port: 80}}, nil, []byte{5, 0}},
		{"connect name (socks5h), two methods", []byte{5, 2, 2, 0, 5, 1, 0, 3, 2, 'h', '2', 0x1f, 0x90},
			Request{CmdConnect, Addr{Name: "h2", Port: 8080}}, nil, []byte{5, 0}},
		{"udp associate IPv6", append(append([]byte{5, 1, 0, 5, 3, 0, 4}, netip.MustParseAddr("fd00::1").AsSlice()...), 0, 53),
			Request{CmdUDPAssociate, Addr{IP: netip.MustParseAddr("fd00::1"), Port: 53}}, nil, []byte{5, 0}},
		{"only user/password", []byte{5, 1, 2}, Request{}, ErrNoAuth, []byte{5, 0xff}},
		{"socks4", []byte{4, 1, 0, 80}, Request{}, ErrVersion, nil},
		{"bad address type", []byte{5, 1, 0, 5, 1, 0, 9}, Request{}, ErrAddress, []byte{5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0}},
		{"empty name", []byte{5, 1, 0, 5, 1, 0, 3, 0, 0, 80}, Request{}, ErrAddress, []byte{5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &rw{Reader: bytes.NewReader(tc.in)}
			got, err := Handshake(c)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if !bytes.Equal(c.out.Bytes(), tc.reply) {
				t.Errorf("wrote % x, want % x", c.out.Bytes(), tc.reply)
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	full := []byte{5, 1, 0, 5, 1, 0, 3, 2, 'h', '2', 0, 80}
	for n := range len(full) {
		if _, err := Handshake(&rw{Reader: bytes.NewReader(full[:n])}); err == nil {
			t.Errorf("%d of %d bytes: no error", n, len(full))
		}
	}
}

func TestReply(t *testing.T) {
	var b bytes.Buffer
	WriteReply(&b, RepSucceeded, AddrFrom(netip.MustParseAddrPort("10.0.1.10:49152")))
	if want := []byte{5, 0, 0, 1, 10, 0, 1, 10, 0xc0, 0}; !bytes.Equal(b.Bytes(), want) {
		t.Errorf("% x, want % x", b.Bytes(), want)
	}
}

// TestDatagram: the UDP header both ways (RFC 1928 §7).
func TestDatagram(t *testing.T) {
	for _, a := range []Addr{
		{IP: netip.MustParseAddr("10.0.2.10"), Port: 7},
		{IP: netip.MustParseAddr("fd00:0:0:2::10"), Port: 53},
		{Name: "h2", Port: 7},
	} {
		b := AppendDatagram(nil, a, []byte("payload"))
		dst, frag, data, err := ParseDatagram(b)
		if err != nil || dst != a || frag != 0 || string(data) != "payload" {
			t.Errorf("%v: parsed %v %d %q %v", a, dst, frag, data, err)
		}
	}
	want := []byte{0, 0, 0, 1, 10, 0, 2, 10, 0, 7, 'x'}
	if got := AppendDatagram(nil, Addr{IP: netip.MustParseAddr("10.0.2.10"), Port: 7}, []byte("x")); !bytes.Equal(got, want) {
		t.Errorf("% x, want % x", got, want)
	}
	for _, bad := range [][]byte{{}, {0, 0, 0}, {0, 0, 0, 1, 10, 0}, {0, 0, 0, 3, 5, 'a'}, {0, 0, 0, 7, 0, 0}} {
		if _, _, _, err := ParseDatagram(bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}

func FuzzHandshake(f *testing.F) {
	f.Add([]byte{5, 1, 0, 5, 1, 0, 3, 2, 'h', '2', 0, 80})
	f.Add([]byte{5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := Handshake(&rw{Reader: bytes.NewReader(b)})
		if err == nil && req.Dest.Name == "" && !req.Dest.IP.IsValid() {
			t.Fatalf("% x: no address and no error", b)
		}
	})
}

func FuzzDatagram(f *testing.F) {
	f.Add(AppendDatagram(nil, Addr{Name: "h2", Port: 7}, []byte("x")))
	f.Add(AppendDatagram(nil, Addr{IP: netip.MustParseAddr("fd00::1"), Port: 7}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		dst, frag, data, err := ParseDatagram(b)
		if err != nil {
			return
		}
		// What parses encodes back to the same bytes (RSV and FRAG aside).
		if frag == 0 && !bytes.Equal(AppendDatagram(nil, dst, data)[3:], b[3:]) {
			t.Fatalf("% x parsed as %v %q: encodes differently", b, dst, data)
		}
	})
}
