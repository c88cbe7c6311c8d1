package overlay

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/stack/wire"
)

// TestTshark captures overlay traffic on the loopback interface and checks
// that tshark decodes it as GENEVE carrying IP, out of the box: the receiver
// listens on the GENEVE port (6081) of a loopback address of its own, so no
// "decode as" is needed, as DESIGN.md asks. It needs tshark (Debian package
// tshark) and root to capture, and skips without them.
func TestTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (Debian: apt-get install tshark)")
	}
	if os.Geteuid() != 0 {
		t.Skip("capturing on lo needs root")
	}

	// 127.0.0.0/8 is all loopback on Linux; pick an address nobody else
	// uses for port 6081, falling back to any port and telling tshark.
	var rcv *Conn
	for i := range 20 {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 81, byte(10 + i + os.Getpid()%200)}), Port)
		if rcv, err = Listen(addr, Options{}); err == nil {
			break
		}
	}
	var decodeAs []string
	if rcv == nil {
		rcv = listen(t, Options{})
		decodeAs = []string{"-d", fmt.Sprintf("udp.port==%d,geneve", rcv.LocalAddr().Port())}
	}
	defer rcv.Close()
	dst := rcv.LocalAddr()
	// Without GSO: a capture on the sending host (and any capture on lo)
	// sees a GSO train before the kernel segments it, as one oversized
	// datagram whose first GENEVE packet tshark decodes and the rest of
	// which it shows as trailing bytes, as it does for TSO'd TCP.
	snd := listen(t, Options{NoGSO: true})

	// An ICMP echo request over IPv4 and one over IPv6, as a virtual host
	// sends them, each to a next hop of its own family.
	src4, dst4, nh4 := netip.MustParseAddr("10.0.1.2"), netip.MustParseAddr("10.0.2.10"), netip.MustParseAddr("10.0.1.1")
	src6, dst6, nh6 := netip.MustParseAddr("2001:db8:1::2"), netip.MustParseAddr("2001:db8:2::a"), netip.MustParseAddr("2001:db8:1::1")
	echo4 := wire.Echo(8, 0x1234, 1, []byte("abcdefghijklmnop"))
	icmp4 := make([]byte, echo4.Len())
	echo4.EncodeV4(icmp4)
	ip4 := (&wire.IPv4Header{TTL: 64, Protocol: wire.ProtoICMPv4, Src: src4, Dst: dst4}).Marshal(icmp4)
	echo6 := wire.Echo(128, 0x1234, 1, []byte("abcdefghijklmnop"))
	icmp6 := make([]byte, echo6.Len())
	echo6.EncodeV6(icmp6, src6, dst6)
	ip6 := (&wire.IPv6Header{NextHeader: wire.ProtoICMPv6, HopLimit: 64, Src: src6, Dst: dst6}).Marshal(icmp6)
	pkt4, err := AppendPacket(nil, 0x123456, nh4, ip4)
	if err != nil {
		t.Fatal(err)
	}
	pkt6, err := AppendPacket(nil, 42, nh6, ip6)
	if err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "overlay.pcapng")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	capture := exec.CommandContext(ctx, tshark, "-i", "lo", "-n", "-q",
		"-f", fmt.Sprintf("udp and dst host %v and dst port %d", dst.Addr(), dst.Port()),
		"-c", "3", "-a", "duration:20", "-w", file)
	stderr, err := capture.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	// tshark says "Capturing on 'Loopback: lo'" when dumpcap starts, and
	// "Capture started" (tshark 3.6+) once packets are being captured; on
	// older versions give it a second after the first.
	ready := make(chan bool, 2)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(&log, sc.Text())
			switch {
			case strings.HasPrefix(sc.Text(), "Capturing on"):
				time.AfterFunc(time.Second, func() { ready <- true })
			case strings.Contains(sc.Text(), "Capture started"):
				ready <- true
			}
		}
		ready <- false
	}()
	if !<-ready {
		capture.Wait()
		t.Skipf("tshark cannot capture on lo:\n%s", log.String())
	}

	if err := snd.WriteBatch(dst, [][]byte{pkt4, pkt6}); err != nil {
		t.Fatal(err)
	}
	// The receiver reads them, so that tshark sees what labd would accept.
	msgs := make([]Message, 2)
	rcv.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got := 0; got < 2; {
		n, err := rcv.ReadBatch(msgs)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	// A sealed packet: opaque by design, but still a UDP datagram that the
	// capture counts.
	sealer := listen(t, Options{Key: mustKey(t, testSecret)})
	if err := sealer.WriteBatch(dst, [][]byte{pkt4}); err != nil {
		t.Fatal(err)
	}
	if err := capture.Wait(); err != nil {
		t.Fatalf("tshark: %v\n%s", err, log.String())
	}

	fields := []string{"frame.number", "geneve.version", "geneve.vni", "geneve.proto_type", "geneve.option.class", "ip.proto", "ip.dst", "ipv6.nxt", "ipv6.dst", "icmp.type", "icmpv6.type", "_ws.malformed", "_ws.expert.severity"}
	args := append([]string{"-r", file, "-n", "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"}, decodeAs...)
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.CommandContext(ctx, tshark, args...).Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	verbose := func() string {
		v, _ := exec.CommandContext(ctx, tshark, append([]string{"-r", file, "-n", "-V"}, decodeAs...)...).Output()
		return string(v)
	}
	if len(lines) != 3 {
		t.Fatalf("captured %d packets, want 3:\n%s\n%s", len(lines), out, verbose())
	}
	// Aggregated fields list the outer IPv4 header first, then the inner.
	outer := dst.Addr().String()
	want := []map[string]string{
		{"geneve.version": "0", "geneve.vni": "0x123456", "geneve.proto_type": "0x0800", "geneve.option.class": "0xfff0",
			"ip.proto": "17,1", "ip.dst": outer + ",10.0.2.10", "icmp.type": "8", "_ws.malformed": "", "_ws.expert.severity": ""},
		{"geneve.version": "0", "geneve.vni": "0x00002a", "geneve.proto_type": "0x86dd", "geneve.option.class": "0xfff0",
			"ip.proto": "17", "ip.dst": outer, "ipv6.nxt": "58", "ipv6.dst": "2001:db8:2::a", "icmpv6.type": "128", "_ws.malformed": "", "_ws.expert.severity": ""},
		// The sealed one: UDP to the GENEVE port, so tshark tries, but
		// what it finds is noise.
		{"ip.proto": "17", "ip.dst": outer, "icmp.type": "", "icmpv6.type": ""},
	}
	for i, w := range want {
		got := strings.Split(lines[i], "|")
		if len(got) != len(fields) {
			t.Fatalf("line %q has %d fields, want %d", lines[i], len(got), len(fields))
		}
		for j, f := range fields {
			if v, ok := w[f]; ok && got[j] != v {
				t.Errorf("packet %d: %s = %q, want %q\n%s", i+1, f, got[j], v, lines[i])
			}
		}
	}
	if t.Failed() {
		t.Logf("tshark -V:\n%s", verbose())
	} else if testing.Verbose() {
		t.Logf("tshark -V:\n%s", verbose())
	}
	t.Logf("tshark fields %v:\n%s", fields, out)
}
