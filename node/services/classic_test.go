package services

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestEchoTCP(t *testing.T) {
	_, n := startServices(t, "echo")
	c := dialTCP(t, n.addr(t, "tcp", 7))

	// A round trip.
	if _, err := c.Write([]byte("hello\r\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 7)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello\r\n" {
		t.Fatalf("echo = %q, want %q", got, "hello\r\n")
	}

	// Then 4 MiB and a half-close: the server echoes everything, then
	// closes (the reader sees EOF, not a reset).
	want := make([]byte, 4<<20)
	rand.Read(want)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		if err == nil {
			err = c.CloseWrite()
		}
		errc <- err
	}()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if !bytes.Equal(back, want) {
		t.Fatalf("echoed %d bytes, not the %d sent", len(back), len(want))
	}
}

func TestEchoUDP(t *testing.T) {
	_, n := startServices(t, "echo")
	c := dialUDP(t, n.addr(t, "udp", 7))
	for _, msg := range []string{"ping", "", strings.Repeat("x", 1400)} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		k, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:k]); got != msg {
			t.Errorf("echo of a %d-byte datagram = %d bytes %.20q", len(msg), k, got)
		}
	}
}

func TestDiscardTCP(t *testing.T) {
	_, n := startServices(t, "discard")
	c := dialTCP(t, n.addr(t, "tcp", 9))
	if _, err := c.Write(make([]byte, 10<<20)); err != nil {
		t.Fatalf("writing 10 MiB: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The server sends nothing, and closes cleanly once it has read all.
	got, err := io.ReadAll(c)
	if err != nil || len(got) != 0 {
		t.Fatalf("after the half-close: read %d bytes, %v; want 0 bytes and EOF", len(got), err)
	}
}

func TestDiscardUDP(t *testing.T) {
	_, n := startServices(t, "discard")
	c := dialUDP(t, n.addr(t, "udp", 9))
	if _, err := c.Write([]byte("into the void")); err != nil {
		t.Fatal(err)
	}
	// No answer comes (nor an ICMP port unreachable, which would make the
	// read fail with "connection refused").
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var ne net.Error
	if k, err := c.Read(make([]byte, 100)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("discard answered: %d bytes, %v", k, err)
	}
}

func TestDaytime(t *testing.T) {
	_, n := startServices(t, "daytime")
	const want = "Thu, 29 Feb 2024 13:37:42 UTC\r\n"

	c := dialTCP(t, n.addr(t, "tcp", 13))
	got, err := io.ReadAll(c) // the server closes after the line
	if err != nil || string(got) != want {
		t.Errorf("daytime over TCP = %q, %v; want %q", got, err, want)
	}

	u := dialUDP(t, n.addr(t, "udp", 13))
	if _, err := u.Write([]byte("what time is it?")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	k, err := u.Read(buf)
	if err != nil || string(buf[:k]) != want {
		t.Errorf("daytime over UDP = %q, %v; want %q", buf[:k], err, want)
	}
}

// rfc864Example is the start of the example in RFC 864, and its line 26,
// where the ring wraps from '~' through the space to '!'.
var rfc864Example = []string{
	0:  "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh",
	1:  "\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghi",
	2:  "#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghij",
	3:  "$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijk",
	26: ";<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~ !\"#",
}

// testRing is RFC 864's ring, written out: '!' to '~', then the space.
const testRing = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~ "

// chargenLine is line k of RFC 864's pattern, without CR LF.
func chargenLine(k int) string {
	var b strings.Builder
	for i := range 72 {
		b.WriteByte(testRing[(k+i)%len(testRing)])
	}
	return b.String()
}

func TestChargenPattern(t *testing.T) {
	if len(testRing) != 95 {
		t.Fatalf("testRing has %d characters, want 95", len(testRing))
	}
	for k, want := range rfc864Example {
		if want != "" && chargenLine(k) != want {
			t.Fatalf("the test's line %d = %q, RFC 864 says %q", k, chargenLine(k), want)
		}
	}
}

func TestChargenTCP(t *testing.T) {
	_, n := startServices(t, "chargen")
	c := dialTCP(t, n.addr(t, "tcp", 19))
	// Data from the client is thrown away and changes nothing.
	if _, err := c.Write([]byte("ignored\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	// Three whole turns of the ring and more: 300 lines.
	for k := range 300 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("line %d: %v", k, err)
		}
		want := chargenLine(k) + "\r\n"
		if k < len(rfc864Example) && rfc864Example[k] != "" && line != rfc864Example[k]+"\r\n" {
			t.Fatalf("line %d = %q, RFC 864's example has %q", k, line, rfc864Example[k])
		}
		if line != want {
			t.Fatalf("line %d = %q, want %q", k, line, want)
		}
	}
	// The client hangs up mid-stream; the set's Close (at cleanup) and the
	// goroutine test check the server's side ends.
}

func TestChargenUDP(t *testing.T) {
	_, n := startServices(t, "chargen")
	c := dialUDP(t, n.addr(t, "udp", 19))
	var stream strings.Builder
	for k := range 8 {
		stream.WriteString(chargenLine(k) + "\r\n")
	}
	lengths := map[int]bool{}
	for range 20 {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		k, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if k > 512 {
			t.Fatalf("a %d-byte answer; RFC 864 says 0 to 512", k)
		}
		if !strings.HasPrefix(stream.String(), string(buf[:k])) {
			t.Fatalf("answer %q is not the start of the pattern", buf[:k])
		}
		lengths[k] = true
	}
	if len(lengths) < 2 {
		t.Errorf("20 answers, all %v bytes long; want random lengths", lengths)
	}
}

func TestLoops(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 19}, true},
		{&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 7}, true},
		{&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 13}, true},
		{&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9}, true},
		{&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 0}, true},
		{&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 40000}, false},
		{fakeAddr("[fd00::1]:19"), true},
		{fakeAddr("[fd00::1]:5353"), false},
		{fakeAddr("not an address"), false},
	} {
		if got := loops(tc.addr); got != tc.want {
			t.Errorf("loops(%v) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// fakeAddr is a net.Addr of another stack's type.
type fakeAddr string

func (a fakeAddr) Network() string { return "udp" }
func (a fakeAddr) String() string  { return string(a) }
